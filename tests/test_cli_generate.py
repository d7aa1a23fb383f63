"""`pyrnn generate` and `pyrnn chat` as a user runs them (subprocesses): streaming output, prompt sources,
state files, the stats line, chat's carried state, and one clear line (no traceback) for user mistakes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from run_pyrnn import run_pyrnn
from tiny_bpe import tiny_rwkv7_bpe_gguf

import pyrnn
from pyrnn.cli_generate import CHAT_STOP

ROOT = str(Path(pyrnn.__file__).resolve().parent.parent)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("cli")
    return tiny_rwkv7_bpe_gguf(tmp, seed=0), tiny_rwkv7_bpe_gguf(tmp, seed=1)


def pyrnn_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_pyrnn(*args, stdin=stdin)


def api_text(model_path: Path, prompt: str, **kw: object) -> str:
    return pyrnn.load(model_path).generate(prompt, **kw).text


def test_generate_streams_the_api_text(models: tuple[Path, Path]) -> None:
    """generate prints what model.generate yields (same seed, same flags), then a stats line on stderr."""
    m, _ = models
    r = pyrnn_cli("generate", str(m), "Hello", "--max-tokens", "20", "--seed", "7", "--temperature", "0.9",
                  "--top-k", "50", "--top-p", "0.9", "--min-p", "0.01", "--repeat-penalty", "1.1",
                  "--presence-penalty", "0.2", "--frequency-penalty", "0.1", "--penalty-window", "16",
                  "--threads", "1")
    assert r.returncode == 0, r.stderr
    expected = api_text(m, "Hello", max_tokens=20, seed=7, temperature=0.9, top_k=50, top_p=0.9, min_p=0.01,
                        repeat_penalty=1.1, presence_penalty=0.2, frequency_penalty=0.1, penalty_window=16)
    assert r.stdout == expected + "\n"
    last = r.stderr.strip().splitlines()[-1]
    assert "prompt" in last and "generated 20 tokens" in last and "tokens/s" in last


def test_prompt_from_stdin_and_file(models: tuple[Path, Path], tmp_path: Path) -> None:
    """PROMPT '-' reads stdin and --prompt-file reads a file: both equal the prompt on the command line."""
    m, _ = models
    flags = ["--max-tokens", "12", "--temperature", "0"]
    direct = pyrnn_cli("generate", str(m), "Hello there", *flags)
    piped = pyrnn_cli("generate", str(m), "-", *flags, stdin="Hello there")
    f = tmp_path / "p.txt"
    f.write_text("Hello there", encoding="utf-8")
    filed = pyrnn_cli("generate", str(m), "--prompt-file", str(f), *flags)
    assert direct.returncode == piped.returncode == filed.returncode == 0
    assert direct.stdout == piped.stdout == filed.stdout


def test_stop_flag(models: tuple[Path, Path]) -> None:
    """--stop (repeatable) cuts the output before the stop string."""
    m, _ = models
    full = api_text(m, "Hello", max_tokens=40, temperature=0)
    stop = full[15:18]
    r = pyrnn_cli("generate", str(m), "Hello", "--max-tokens", "40", "--temperature", "0", "--stop", "\x01nope",
                  "--stop", stop)
    assert r.returncode == 0, r.stderr
    assert r.stdout == full[:full.find(stop)] + "\n"


def test_state_out_then_in_continues(models: tuple[Path, Path], tmp_path: Path) -> None:
    """--state-out after a prompt, then --state-in with the rest, equals the whole prompt in one run."""
    m, _ = models
    s = tmp_path / "sys.state"
    r1 = pyrnn_cli("generate", str(m), "Hello", "--max-tokens", "0", "--state-out", str(s))
    assert r1.returncode == 0, r1.stderr
    r2 = pyrnn_cli("generate", str(m), " there", "--state-in", str(s), "--max-tokens", "15", "--temperature", "0")
    model = pyrnn.load(m)
    ids = model.tokenizer.encode("Hello") + model.tokenizer.encode(" there")
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == model.generate(ids, max_tokens=15, temperature=0).text + "\n"


def test_chat_carries_the_state(models: tuple[Path, Path]) -> None:
    """chat replies equal generate calls on one carried state with the documented framing; /reset restarts,
    /quit ends (later lines are ignored)."""
    m, _ = models
    lines = ["hi", "how are you", "/reset", "hi", "/quit", "never"]
    r = pyrnn_cli("chat", str(m), "--max-tokens", "10", "--temperature", "0", stdin="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    model = pyrnn.load(m)
    expected, state, after = [], model.new_state(), None
    for line in ["hi", "how are you", None, "hi"]:
        if line is None:
            state, after = model.new_state(), None
            continue
        prompt = (f"User: {line}\n\nAssistant:" if after is None else
                  f" {line}\n\nAssistant:" if after == "stop" else f"{CHAT_STOP} {line}\n\nAssistant:")
        g = model.generate(prompt, max_tokens=10, temperature=0, stop=[CHAT_STOP], state=state)
        expected.append(g.text.lstrip(" "))
        after = g.stop_reason
    assert r.stdout == "".join(e + "\n" for e in expected)
    assert expected[0] == expected[2] and expected[0] != expected[1]


def test_chat_with_a_cached_state(models: tuple[Path, Path], tmp_path: Path) -> None:
    """chat --state-in starts from a saved state (e.g. a system prompt)."""
    m, _ = models
    s = tmp_path / "sys.state"
    saved = pyrnn_cli("generate", str(m), "System: be nice\n\n", "--max-tokens", "0", "--state-out", str(s))
    assert saved.returncode == 0, saved.stderr
    plain = pyrnn_cli("chat", str(m), "--max-tokens", "8", "--temperature", "0", stdin="hi\n")
    cached = pyrnn_cli("chat", str(m), "--state-in", str(s), "--max-tokens", "8", "--temperature", "0", stdin="hi\n")
    assert plain.returncode == cached.returncode == 0
    assert plain.stdout != cached.stdout


def test_default_model(models: tuple[Path, Path]) -> None:
    """Without MODEL the packaged default model is used, or a clear error says none is installed."""
    default = Path(ROOT) / "pyrnn" / "data" / "default.gguf"
    r = pyrnn_cli("generate", "Hello", "--max-tokens", "3")
    if default.is_file():
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 1 and "no default model is installed" in r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args,message", [
    (["generate", "{dir}/missing.gguf", "Hi"], "missing.gguf"),
    (["generate", "{notgguf}", "Hi"], "not a valid GGUF file"),
    (["generate", "{model}", "Hi", "--top-p", "2"], "--top-p: expected a number in (0, 1], found 2"),
    (["generate", "{model}", "Hi", "--temperature", "-1"], "--temperature: expected a number >= 0"),
    (["generate", "{model}", "Hi", "--max-tokens", "ten"], "--max-tokens: expected an integer >= 0"),
    (["generate", "{model}", "Hi", "--threads", "0"], "--threads: expected an integer in 1..1024"),
    (["generate", "{model}", "Hi", "--threads", "2", "--device", "cuda"], "threads: applies to device 'cpu' only"),
    (["generate", "{model}", "Hi", "--presence-penalty", "nan"], "presence_penalty: expected a finite number"),
    (["generate", "{model}"], "expected a PROMPT after the model"),
    (["generate", "{model}", "Hi", "--state-in", "{other_state}"], "another model"),
    (["generate", "{model}", "Hi", "--state-in", "{dir}/none.state"], "none.state"),
    (["generate", "{model}", "--prompt-file", "{dir}/none.txt"], "none.txt"),
    (["chat", "{dir}/missing.gguf"], "missing.gguf"),
])
def test_user_mistakes_get_one_clear_line(models: tuple[Path, Path], tmp_path: Path, args: list[str],
                                          message: str) -> None:
    """Missing files, a non-GGUF file, bad flag values and another model's state: an error line, no traceback."""
    m, other = models
    notgguf = tmp_path / "notes.gguf"
    notgguf.write_text("hello")
    other_state = tmp_path / "other.state"
    pyrnn.load(other).new_state().save(other_state)
    subs = {"dir": str(tmp_path), "model": str(m), "notgguf": str(notgguf), "other_state": str(other_state)}
    r = pyrnn_cli(*[a.format(**subs) for a in args])
    assert r.returncode in (1, 2), r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
