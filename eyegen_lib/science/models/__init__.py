"""One readable model file per paper (nanoGPT style), each with its ``@dataclass`` config."""
