"""A missing GLUE task is fetched from a local HTTP server, checked, and put in place whole or not at all.

The server runs on 127.0.0.1 in a thread and serves tasks built here with GLUE's row counts; a guard
refuses any other address, so nothing here touches the internet.
"""
from __future__ import annotations

import importlib.util
import json
import io
import socket
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ptuning.text import download
from ptuning.text.download import GET_GLUE, DownloadError, ensure_glue_task

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def local_only(monkeypatch):
    """Any connection other than to 127.0.0.1 fails the test; $PTUNING_GLUE_URL starts unset."""
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        assert address[0] in ("127.0.0.1", "localhost"), f"a test tried to reach {address}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    for variable in (download.URL_VARIABLE, "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)   # a proxy would take our 127.0.0.1 requests elsewhere


class Server:
    """name -> body; `lie_length[name]` makes the server announce more bytes than it sends."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.lie_length: dict[str, int] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(self.path)
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(server.lie_length.get(name, len(body))))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):   # keep the test output clean
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/glue/"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    serving = Server()
    yield serving
    serving.http.shutdown()
    serving.http.server_close()


def table(header: str | None, rows: int, columns: int) -> str:
    lines = [header] if header else []
    lines += ["\t".join(f"cell {row} {column}" for column in range(columns)) for row in range(rows)]
    return "\n".join(lines) + "\n"


def wnli_zip(train_rows: int = 635, dev_rows: int = 71) -> bytes:
    """A zip laid out as GLUE's WNLI.zip: one WNLI/ folder with three TSV files."""
    header = "index\tsentence1\tsentence2\tlabel"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("WNLI/train.tsv", table(header, train_rows, 4))
        bundle.writestr("WNLI/dev.tsv", table(header, dev_rows, 4))
        bundle.writestr("WNLI/test.tsv", table("index\tsentence1\tsentence2", 5, 3))
    return buffer.getvalue()


def mrpc_files() -> dict[str, bytes]:
    """SentEval's two files (train with a BOM) and GLUE's dev ids: 3668 train + 408 dev pairs."""
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    pairs = [f"{index % 2}\t{1000 + index}\t{5000 + index}\tfirst {index}\tsecond {index}" for index in range(4076)]
    dev_ids = [f"{1000 + index}\t{5000 + index}" for index in range(0, 4076, 10)][:408]
    test = [f"1\t{9000 + index}\t{9500 + index}\ttest a {index}\ttest b {index}" for index in range(7)]
    return {"msr_paraphrase_train.txt": ("\ufeff" + "\n".join([header, *pairs]) + "\n").encode(),
            "msr_paraphrase_test.txt": ("\n".join([header, *test]) + "\n").encode(),
            "mrpc_dev_ids.tsv": ("\n".join(dev_ids) + "\n").encode()}


def test_fetches_a_zip_task_into_place(server, tmp_path, capsys):
    server.files["WNLI.zip"] = wnli_zip()
    folder = ensure_glue_task("WNLI", tmp_path / "glue", base_url=server.url)
    assert folder == tmp_path / "glue" / "WNLI"
    assert sorted(path.name for path in folder.iterdir()) == ["dev.tsv", "test.tsv", "train.tsv"]
    assert (folder / "dev.tsv").read_text().count("\n") == 72   # header + 71 rows
    assert sorted(path.name for path in (tmp_path / "glue").iterdir()) == ["WNLI"]   # scratch folder gone
    assert server.requests == ["/glue/WNLI.zip"]
    # Once there, the task is not fetched again.
    assert ensure_glue_task("wnli", tmp_path / "glue", base_url=server.url) == folder
    assert server.requests == ["/glue/WNLI.zip"]


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(server, tmp_path, capsys):
    server.files["WNLI.zip"] = wnli_zip()
    ensure_glue_task("wnli", tmp_path, base_url=server.url)
    err = capsys.readouterr().err
    assert f"downloading {server.url}WNLI.zip" in err
    assert "\r" not in err and err.endswith("\n")


def test_progress_is_one_live_line_on_a_terminal(server, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    server.files["WNLI.zip"] = wnli_zip()
    ensure_glue_task("wnli", tmp_path, base_url=server.url)
    assert terminal.getvalue().startswith("\rWNLI.zip") and terminal.getvalue().count("\n") == 1


def test_progress_off_prints_nothing(server, tmp_path, capsys):
    server.files["WNLI.zip"] = wnli_zip()
    ensure_glue_task("wnli", tmp_path, base_url=server.url, progress=False)
    assert capsys.readouterr().err == ""


def test_environment_variable_names_the_server(server, tmp_path, monkeypatch):
    monkeypatch.setenv(download.URL_VARIABLE, server.url.rstrip("/"))   # with or without the slash
    server.files["WNLI.zip"] = wnli_zip()
    assert (ensure_glue_task("wnli", tmp_path) / "train.tsv").is_file()


def test_mrpc_is_built_from_senteval_files_as_glue_did(server, tmp_path):
    server.files.update(mrpc_files())
    folder = ensure_glue_task("mrpc", tmp_path, base_url=server.url)
    train, dev, test = ((folder / f"{name}.tsv").read_text(encoding="utf-8").splitlines()
                        for name in ("train", "dev", "test"))
    assert train[0] == dev[0] == "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"   # the BOM is gone
    assert (len(train) - 1, len(dev) - 1) == (3668, 408)
    assert dev[1] == "0\t1000\t5000\tfirst 0\tsecond 0" and train[1] == "1\t1001\t5001\tfirst 1\tsecond 1"
    assert test[0] == "index\t#1 ID\t#2 ID\t#1 String\t#2 String" and test[1] == "0\t9000\t9500\ttest a 0\ttest b 0"
    assert len(test) == 8   # our header + SentEval's 7 pairs, numbered from 0


def test_wrong_row_count_is_refused_and_leaves_nothing(server, tmp_path):
    server.files["WNLI.zip"] = wnli_zip(train_rows=634)
    with pytest.raises(DownloadError, match="train.tsv has 634 data rows, GLUE's has 635"):
        ensure_glue_task("wnli", tmp_path / "glue", base_url=server.url)
    assert not (tmp_path / "glue").exists()  # nothing left behind, not even the empty GLUE root


def test_short_body_is_refused_and_leaves_nothing(server, tmp_path):
    body = wnli_zip()
    server.files["WNLI.zip"] = body[: len(body) // 2]
    server.lie_length["WNLI.zip"] = len(body)   # the connection closes before the announced end
    with pytest.raises(DownloadError, match=r"WNLI\.zip") as error:
        ensure_glue_task("wnli", tmp_path / "glue", base_url=server.url)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "glue").exists()  # nothing left behind, not even the empty GLUE root


def test_truncated_zip_is_refused_and_leaves_nothing(server, tmp_path):
    server.files["WNLI.zip"] = wnli_zip()[:-200]   # honest length, broken archive
    with pytest.raises(DownloadError, match="not a zip file"):
        ensure_glue_task("wnli", tmp_path / "glue", base_url=server.url)
    assert not (tmp_path / "glue").exists()  # nothing left behind, not even the empty GLUE root


def test_damaged_zip_member_is_refused(server, tmp_path):
    body = bytearray(wnli_zip())
    body[60] ^= 0xFF   # inside the first member's compressed data: its CRC no longer matches
    server.files["WNLI.zip"] = bytes(body)
    with pytest.raises(DownloadError, match="WNLI.zip"):
        ensure_glue_task("wnli", tmp_path / "glue", base_url=server.url)
    assert not (tmp_path / "glue").exists()  # nothing left behind, not even the empty GLUE root


def test_interrupted_download_leaves_nothing(server, tmp_path, monkeypatch):
    server.files["WNLI.zip"] = wnli_zip()

    def interrupt(self, received):
        raise KeyboardInterrupt

    monkeypatch.setattr(download.ProgressBar, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ensure_glue_task("wnli", tmp_path / "glue", base_url=server.url)
    assert not (tmp_path / "glue").exists()  # nothing left behind, not even the empty GLUE root


def test_404_gives_the_instruction_naming_the_url(server, tmp_path):
    with pytest.raises(DownloadError) as error:
        ensure_glue_task("rte", tmp_path / "glue", base_url=server.url)
    message = str(error.value)
    assert f"{server.url}RTE.zip" in message and "HTTP 404" in message and GET_GLUE in message
    assert "\n" not in message
    assert not (tmp_path / "glue").exists()  # nothing left behind, not even the empty GLUE root


def test_refused_connection_gives_the_instruction_naming_the_url(tmp_path):
    with socket.socket() as probe:   # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(DownloadError) as error:
        ensure_glue_task("sst2", tmp_path / "glue", base_url=url)
    message = str(error.value)
    assert f"could not download {url}SST-2.zip" in message and GET_GLUE in message and "\n" not in message
    assert not (tmp_path / "glue").exists()  # nothing left behind, not even the empty GLUE root


def test_no_download_gives_the_instruction_without_asking(server, tmp_path):
    with pytest.raises(DownloadError, match="downloading is off") as error:
        ensure_glue_task("wnli", tmp_path / "glue", allow_download=False, base_url=server.url)
    assert str(tmp_path / "glue" / "WNLI" / "train.tsv") in str(error.value) and GET_GLUE in str(error.value)
    assert server.requests == [] and not (tmp_path / "glue").exists()


def test_a_partial_folder_is_never_overwritten(server, tmp_path):
    folder = tmp_path / "WNLI"
    folder.mkdir()
    (folder / "train.tsv").write_text("mine\n")
    server.files["WNLI.zip"] = wnli_zip()
    with pytest.raises(DownloadError, match=r"WNLI[/\\]dev\.tsv: file not found, but .* exists"):
        ensure_glue_task("wnli", tmp_path, base_url=server.url)
    assert (folder / "train.tsv").read_text() == "mine\n" and server.requests == []


def test_unknown_task_lists_the_known_ones(tmp_path):
    with pytest.raises(DownloadError, match="unknown GLUE task 'mrcp'; known: cola, sst2, mrpc"):
        ensure_glue_task("mrcp", tmp_path)


def test_the_script_is_a_thin_caller(server, tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("download_glue", REPO / "data" / "download_glue.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setenv(download.URL_VARIABLE, server.url)
    server.files["WNLI.zip"] = wnli_zip()
    assert script.main(["WNLI", "--data-dir", str(tmp_path)]) == 0
    assert script.main(["wnli", "--data-dir", str(tmp_path)]) == 0
    assert "exists, skipped" in capsys.readouterr().out and server.requests == ["/glue/WNLI.zip"]
    assert script.main(["rte", "--data-dir", str(tmp_path)]) == 1
    assert f"error: could not download {server.url}RTE.zip (HTTP 404" in capsys.readouterr().err


# --- train.py fetches what it needs ---------------------------------------------------------------

def train_on_served_mrpc(server, tmp_path, monkeypatch, minilm_dir, *extra, capsys=None):
    """train.main on a tiny BERT (MiniLM's vocabulary), MRPC served by the local server, data folder
    left to train.py's default (pointed into tmp_path)."""
    sys.path.insert(0, str(REPO))
    import train
    from test_predict import make_tiny_bert

    server.files.update(mrpc_files())
    monkeypatch.setenv(download.URL_VARIABLE, server.url)
    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.setattr(download, "DATA_ROOT", tmp_path / "data")   # the repository's data/ in real use
    model_dir = make_tiny_bert(tmp_path / "model", minilm_dir)
    if capsys is not None:
        capsys.readouterr()   # transformers' own progress bars while saving the tiny model
    out = tmp_path / "run"
    code = train.main(["--task", "mrpc", "--model", str(model_dir), "--method", "prefix", "--num-virtual-tokens", "2",
                       "--max-train-samples", "32", "--max-dev-samples", "16", "--batch-size", "16", "--epochs", "1",
                       "--output-dir", str(out), *extra])
    return code, out


def test_train_fetches_a_missing_task_and_trains_on_it(server, tmp_path, monkeypatch, minilm_dir, capsys, one_thread):
    code, out = train_on_served_mrpc(server, tmp_path, monkeypatch, minilm_dir, capsys=capsys)
    assert code == 0
    folder = tmp_path / "data" / "glue" / "MRPC"
    assert len((folder / "train.tsv").read_text().splitlines()) == 1 + 3668
    assert sorted(request.rsplit("/", 1)[-1] for request in server.requests) == sorted(download.MRPC_FILES)
    captured = capsys.readouterr()
    assert "train 32 examples" in captured.out and "\r" not in captured.err
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1]
    # The served texts are what it read: pair 0 went to dev (every 10th), so train starts at "first 1".
    from ptuning.tasks.glue import read_glue
    assert read_glue("mrpc", "train", tmp_path / "data" / "glue")[0].text_a == "first 1"


def test_train_no_download_refuses_without_a_request(server, tmp_path, monkeypatch, minilm_dir, capsys):
    with pytest.raises(SystemExit) as stopped:
        train_on_served_mrpc(server, tmp_path, monkeypatch, minilm_dir, "--no-download", capsys=capsys)
    err = capsys.readouterr().err
    assert stopped.value.code == DownloadError.exit_code and "downloading is off (--no-download)" in err
    assert str(tmp_path / "data" / "glue" / "MRPC" / "train.tsv") in err and GET_GLUE in err
    assert server.requests == [] and not (tmp_path / "run").exists()


def test_train_offline_gives_the_one_line_instruction(tmp_path, monkeypatch, minilm_dir, capsys):
    with socket.socket() as probe:   # a port nothing listens on: as good as no network
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Nowhere:
        files, requests, url = {}, [], f"http://127.0.0.1:{port}/"

    with pytest.raises(SystemExit) as stopped:
        train_on_served_mrpc(Nowhere(), tmp_path, monkeypatch, minilm_dir, capsys=capsys)
    err = capsys.readouterr().err
    assert stopped.value.code == DownloadError.exit_code
    assert err.startswith("train.py: ") and "could not download" in err and GET_GLUE in err and err.count("\n") == 1


def test_offline_says_where_the_task_goes_and_keeps_an_existing_root(server, tmp_path):
    root = tmp_path / "glue"
    with pytest.raises(DownloadError) as error:
        ensure_glue_task("rte", root, base_url=server.url)  # the server has no RTE.zip
    assert f"RTE/ belongs in {root}" in str(error.value) and "--data-dir or $GLUE_DIR" in str(error.value)
    assert not root.exists()
    root.mkdir()  # a root the user made stays, empty or not
    with pytest.raises(DownloadError):
        ensure_glue_task("rte", root, base_url=server.url)
    assert root.is_dir() and list(root.iterdir()) == []
