"""pyrnn — recurrent language models (RWKV 4-7, Mamba 1/2, RetNet) on the devices people carry.

    import pyrnn
    f = pyrnn.GGUFFile("model.gguf")      # validated, memory-mapped
    print(f.value("general.architecture"))
"""

from ._core import FormatError, GGUFFile, available_isas, cpu_features, isa

__all__ = ["FormatError", "GGUFFile", "available_isas", "cpu_features", "isa", "__version__"]
__version__ = "0.1.0"
