"""Checkpoint converters: read the checkpoints people have (BlinkDL .pth, Hugging Face folders,
state-spaces Mamba, torchscale RetNet) without PyTorch, and write pyrnn GGUF files."""
