"The prompt writer's HTTP backend against a real server on 127.0.0.1, and a run killed mid-way that resumes."
import json, os, signal, subprocess, sys, textwrap, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest.mock import patch
import pytest
from dreamfuse_lit.core.judge_server import ServerError
from dreamfuse_lit.datagen.prompts import OpenAIWriter, write_prompts

ENV, KEY = "DREAMFUSE_TEST_WRITER_KEY", "sk-writer-0123456789"
FGS, BGS = ["a red mug", "a ginger cat", "a star logo"], ["a quiet meadow", "a plain room"]


class Server:
    "A chat-completions server on 127.0.0.1 that answers each request with `reply(body)` -> (status, content)."
    def __init__(self, reply):
        self.requests = []
        outer = self
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(dict(path=self.path, auth=self.headers["Authorization"], body=body))
                status, content = reply(body)
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]} if status == 200
                                  else {"error": {"message": content}}).encode()
                self.send_response(status); self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
    def __enter__(self): return self
    def __exit__(self, *exc): self.httpd.shutdown(); self.httpd.server_close()


def triple(body):
    fg = body["messages"][0]["content"].split("Foreground examples:\n- ")[1].split("\n")[0]
    return 200, json.dumps(dict(foreground=fg, background="a meadow", fused=f"{fg} in a meadow"))


def test_requests_and_rows(tmp_path):
    with Server(triple) as srv, patch.dict(os.environ, {ENV: KEY}):
        rows = write_prompts(tmp_path / "p.jsonl", OpenAIWriter("gpt-4o", base_url=srv.url, api_key_env=ENV), FGS, BGS, 4,
                             examples=2, progress=False)
    assert [r["id"] for r in rows] == [0, 1, 2, 3] and all("error" not in r for r in rows)
    req = srv.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == f"Bearer {KEY}"
    assert req["body"]["model"] == "gpt-4o" and isinstance(req["body"]["seed"], int)
    assert rows[0]["fused"] == f"{rows[0]['foreground']} in a meadow"
    assert len({r["body"]["seed"] for r in srv.requests}) == 4  # each item asks with its own seed


def test_invalid_answers_become_error_rows(tmp_path):
    with Server(lambda body: (200, "Here you go: foreground = a mug")) as srv, patch.dict(os.environ, {ENV: KEY}):
        rows = write_prompts(tmp_path / "p.jsonl", OpenAIWriter(base_url=srv.url, api_key_env=ENV), FGS, BGS, 2, attempts=3, progress=False)
    assert len(srv.requests) == 6
    assert [(r["attempts"], r["answer"]) for r in rows] == [(3, "Here you go: foreground = a mug")] * 2
    assert all("no JSON object" in r["error"] for r in rows)


def test_refused_request_stops_without_a_row_or_the_key(tmp_path):
    out, refuse = tmp_path / "p.jsonl", [True]
    with Server(lambda body: (401, f"Incorrect API key provided: {KEY}") if refuse[0] else triple(body)) as srv, \
         patch.dict(os.environ, {ENV: KEY}):
        writer = OpenAIWriter(base_url=srv.url, api_key_env=ENV, backoff=.01)
        with pytest.raises(ServerError) as caught: write_prompts(out, writer, FGS, BGS, 2, progress=False)
        assert "HTTP 401" in str(caught.value) and KEY not in str(caught.value)
        assert out.read_text() == ""  # nothing recorded: a rerun asks again
        refuse[0] = False
        rows = write_prompts(out, writer, FGS, BGS, 2, progress=False)
    assert len(rows) == 2 and all("fused" in r for r in rows)


SCRIPT = textwrap.dedent("""
    import json, sys, time
    from dreamfuse_lit.datagen.prompts import write_prompts
    class Slow:
        identity = "Slow()"
        def write(self, request, seed):
            time.sleep(.02)
            return json.dumps(dict(foreground="a mug", background="a room", fused=f"a mug in a room {seed}"))
    write_prompts(sys.argv[1], Slow(), ["a mug", "a cat"], ["a room", "a meadow"], 100, examples=1, progress=False)
""")


def test_killed_run_resumes(tmp_path):
    out, script = tmp_path / "p.jsonl", tmp_path / "run.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(out)])
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 5): time.sleep(.02)
    proc.send_signal(signal.SIGKILL); proc.wait()
    before = [json.loads(l) for l in out.read_text().splitlines() if l.endswith("}")]
    assert 5 <= len(before) < 100
    subprocess.run([sys.executable, str(script), str(out)], check=True, timeout=120)
    after = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r["id"] for r in after] == list(range(100))  # each item once
    assert after[:len(before)] == before[:len(before)]  # what was written before the kill is kept as it was
