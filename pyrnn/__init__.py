"""pyrnn — recurrent language models (RWKV 4-7, Mamba 1/2, RetNet) on the devices people carry.

    import pyrnn
    model = pyrnn.load("model.gguf")              # validated, memory-mapped
    state = model.new_state()
    logits = model.forward(model.tokenizer.encode("Once upon a time"), state)
"""

from ._core import FormatError, GGUFFile, available_isas, cpu_features, isa
from .model import Model, State, default_model_path, load

__all__ = ["FormatError", "GGUFFile", "Model", "State", "available_isas", "cpu_features", "default_model_path", "isa",
           "load", "__version__"]
__version__ = "0.1.0"
