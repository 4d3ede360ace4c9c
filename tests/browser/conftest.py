"""Browser fixtures: Debian's Chromium driven by Playwright against real `voxcall serve` processes.

Chromium is /usr/bin/chromium (Debian's package; Playwright never downloads a browser here) and
Playwright is the Python package pinned in scripts/browser-deps.sh, which installs both. A
missing browser or driver FAILS the tests, with a pointer to that script.

Each browser gets a fake microphone that plays a WAV file (Chromium's
`--use-file-for-fake-audio-capture`): silence for the text and tool tests, a spoken question
padded with silence for the voice test, and looping speech for the mute test. Launches are
cached per WAV, so a run starts at most four Chromium processes, all closed when tests/browser ends.
"""

from __future__ import annotations

import array
import json
import os
import shutil
import subprocess
import sys
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.browser.playground import Page
from tests.conftest import ROOT, RunningServer

CHROMIUM = Path(os.environ.get("VOXCALL_CHROMIUM", "/usr/bin/chromium"))
DEPS = "run `bash scripts/browser-deps.sh` (it installs Debian's chromium and the pinned playwright package)"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SPEECH_FIXTURES = ROOT / "tests" / "fixtures" / "speech"
RATE = 16000

# The flags the machine notes ask for: no sandbox as root, no GPU, and no background traffic
# (this machine's network is closed). Playwright adds a fresh --user-data-dir itself.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The Chromium binary; fails (never skips) when it or the playwright package is missing."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: {DEPS}", pytrace=False)
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail(f"the playwright Python package is missing: {DEPS}", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# ---------------------------------------------------------------------------------------------
# Fake microphone input
# ---------------------------------------------------------------------------------------------


def _read_pcm(path: Path) -> array.array[int]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == RATE, f"{path}: need 16 kHz mono s16"
        samples = array.array("h")
        samples.frombytes(w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _write_wav(path: Path, samples: array.array[int]) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return path


def _silence(seconds: float) -> array.array[int]:
    return array.array("h", bytes(2 * int(RATE * seconds)))


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Spoken test utterances as 16 kHz WAVs: the committed fixtures, else made now."""
    if (SPEECH_FIXTURES / "manifest.json").is_file():
        folder = SPEECH_FIXTURES
    else:
        folder = tmp_path_factory.mktemp("speech")
        script = ROOT / "scripts" / "make-test-audio.py"
        made = script.is_file() and subprocess.run([sys.executable, str(script), str(folder)], capture_output=True, timeout=600).returncode == 0
        if not made:
            _espeak(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    return {name.removesuffix(".wav"): folder / name for name in manifest}


def _espeak(folder: Path) -> None:
    """Fallback when Piper is not installed: espeak-ng (Debian's package) at 16 kHz."""
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if not espeak or not sox:
        pytest.fail("no speech fixtures: tests/fixtures/speech is missing, scripts/make-test-audio.py failed, "
                    "and espeak-ng/sox are not installed (apt-get install espeak-ng sox)", pytrace=False)
    texts = {"capital.wav": "What is the capital of France?", "joke.wav": "Tell me a joke about cats."}
    for name, text in texts.items():
        raw = folder / f"{name}.raw.wav"
        subprocess.run([espeak, "-w", str(raw), text], check=True, timeout=60)
        subprocess.run([sox, str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(folder / name)], check=True, timeout=60)
        raw.unlink()
    (folder / "manifest.json").write_text(json.dumps(texts))


@pytest.fixture(scope="session")
def mic_files(speech: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """WAVs for the fake microphone (each file loops, so the padding sets how often it speaks).

    `silence`; `question`: a question 1.5 s in, then a minute of silence; `interrupt`: "Stop,
    wait a moment." 4 s in (while a long greeting plays), then silence; `chatter`: speech on a loop.
    """
    folder = tmp_path_factory.mktemp("mic")
    question = _silence(1.5) + _read_pcm(speech["capital"]) + _silence(60)
    interrupt = _silence(4) + _read_pcm(speech["interrupt"] if "interrupt" in speech else speech["joke"]) + _silence(60)
    chatter = _read_pcm(speech["joke"]) + _silence(0.3)
    return {
        "silence": _write_wav(folder / "silence.wav", _silence(2)),
        "question": _write_wav(folder / "question.wav", question),
        "interrupt": _write_wav(folder / "interrupt.wav", interrupt),
        "chatter": _write_wav(folder / "chatter.wav", chatter),
    }


# ---------------------------------------------------------------------------------------------
# Browsers and pages
# ---------------------------------------------------------------------------------------------

BrowserFor = Callable[[str], Awaitable[Any]]


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def browser_for(chromium: Path, mic_files: dict[str, Path]) -> AsyncIterator[BrowserFor]:
    """`await browser_for(name)`: a Chromium whose microphone plays that `mic_files` WAV."""
    from playwright.async_api import async_playwright

    browsers: dict[str, Any] = {}
    async with async_playwright() as p:

        async def launch(mic: str) -> Any:
            if mic not in browsers:
                browsers[mic] = await p.chromium.launch(
                    executable_path=str(chromium), headless=True,
                    args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={mic_files[mic]}"],
                )
            return browsers[mic]

        yield launch
        for browser in browsers.values():
            await browser.close()


PageFor = Callable[..., Awaitable[Page]]


@pytest_asyncio.fixture(loop_scope="session")
async def page_for(browser_for: BrowserFor, artifacts: Path, request: pytest.FixtureRequest) -> AsyncIterator[PageFor]:
    """`await page_for(server, mic="silence", viewport=...)`: a new context and page on the playground."""
    contexts: list[Any] = []

    async def open_page(server: RunningServer, *, mic: str = "silence", viewport: dict[str, int] | None = None) -> Page:
        browser = await browser_for(mic)
        context = await browser.new_context(viewport=viewport or {"width": 1100, "height": 900}, permissions=["microphone"])
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(15_000)
        wrapped = Page(page, server, artifacts, request.node.name)
        response = await page.goto(server.url + "/")
        if response is None or response.status != 200:
            pytest.fail(f"GET / answered {response and response.status}: the server does not serve the playground "
                        "(create_app must include voxcall.server.web.router)", pytrace=False)
        return wrapped

    yield open_page
    for context in contexts:
        await context.close()
