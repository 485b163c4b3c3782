"A server judge inside the filter: a reply that is not JSON stops the run with the URL and how to resume, and a run's results are never resumed against another server."
import json, os, shutil
from unittest.mock import patch
import pytest
from dreamfuse_lit.cli import main
from dreamfuse_lit.core.files import data_path
from dreamfuse_lit.core.judge_server import JudgeError, OpenAIJudge
from dreamfuse_lit.dreamfuse.filtering import JUDGE_CHECKS, filter_manifest
from test_05b_judge_server import KEY, FakeServer, completion, ok


@pytest.fixture
def one_row(tmp_path):
    "A manifest of the demo set's first row, its images beside it."
    demo = data_path("demo")
    first = json.loads((demo / "manifest.jsonl").read_text().splitlines()[0])
    for f in ("foreground", "foreground_mask", "background", "fused"): shutil.copy(demo / first[f], tmp_path / first[f])
    (tmp_path / "one.jsonl").write_text(json.dumps(first) + "\n")
    return tmp_path / "one.jsonl"


def yes(): return ok(completion("Yes", {"Yes": .8, "No": .2}))
def html_page(): return (200, b"<html><body>Sign in</body></html>", {"Content-Type": "text/html"}, 0.)


def test_cli_filter_says_which_server_and_how_to_resume(one_row, tmp_path):
    "`dreamfuse-lit filter` against a server that answers a page, not JSON: the message names the URL and says that a rerun resumes."
    with FakeServer(html_page()) as srv, patch.dict(os.environ, {"OPENAI_API_KEY": KEY}):
        with pytest.raises(SystemExit) as caught:
            main(["filter", str(one_row), "--out", str(tmp_path / "out"), "--judge", f"openai:gpt-4o@{srv.url}",
                  "--dice-threshold", "0", "--workers", "1", "--no-progress"])
    message = str(caught.value.code)
    assert f"{srv.url}/chat/completions: answered HTTP 200 with a body that is not JSON (text/html)" in message, message
    assert "rerun to resume" in message and KEY not in message, message


def test_filter_manifest_error_says_how_to_resume(one_row, tmp_path):
    "Called from Python, the judge's error carries a note: where the finished rows are and that the same call resumes."
    with FakeServer(html_page()) as srv, patch.dict(os.environ, {"OPENAI_API_KEY": KEY}):
        with pytest.raises(JudgeError) as caught:
            filter_manifest(one_row, tmp_path / "out", judge=OpenAIJudge(base_url=srv.url), dice_threshold=0., progress=False)
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert str(tmp_path / "out" / "results.jsonl") in notes and "resume" in notes, notes


def test_resume_against_another_server_is_refused(one_row, tmp_path):
    "The same model name at another base_url is another judge: its verdicts are not mixed into the first one's results."
    out = tmp_path / "out"
    with FakeServer(yes()) as first, FakeServer(yes()) as other, patch.dict(os.environ, {"OPENAI_API_KEY": KEY}):
        done = filter_manifest(one_row, out, judge=OpenAIJudge(base_url=first.url), dice_threshold=0., progress=False)
        assert (done["new"], len(first.requests)) == (1, len(JUDGE_CHECKS))
        with pytest.raises(ValueError, match=rf"judge: was .*{first.url}.*, now .*{other.url}"):
            filter_manifest(one_row, out, judge=OpenAIJudge(base_url=other.url), dice_threshold=0., progress=False)
        assert other.requests == []
        again = filter_manifest(one_row, out, judge=OpenAIJudge(base_url=first.url + "/", timeout=5., retries=1),
                                dice_threshold=0., progress=False)  # the same server; waiting and retrying change no verdict
        assert (again["resumed"], len(first.requests)) == (1, len(JUDGE_CHECKS))


def test_vr_score_error_holds_no_key():
    "The eval notebook's VR score asks through `judge(image, question)`: an answer that quotes the key fails without it."
    from PIL import Image
    from dreamfuse_lit.core.metrics import vr_answers
    with FakeServer(ok(completion(f"I read {KEY} in your request."))) as srv, patch.dict(os.environ, {"OPENAI_API_KEY": KEY}):
        with pytest.raises(JudgeError) as caught:
            vr_answers([Image.new("RGB", (32, 32))], OpenAIJudge(base_url=srv.url, logprobs=False), questions=["Is it red?"])
    assert srv.url in str(caught.value) and KEY not in str(caught.value), str(caught.value)
