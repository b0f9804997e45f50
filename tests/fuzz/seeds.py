"""Seed corpora for the fuzz targets, cut from the golden cases
(tests/cases): each case's client request, provider answer and provider
stream, behind the mode byte fuzz_translate.h reads. Usage: seeds.py OUTDIR"""
import json, os, sys

out = sys.argv[1]
targets = {"openai->anthropic": "openai_to_anthropic", "openai->gemini": "openai_to_gemini",
           "anthropic->openai": "anthropic_to_openai", "anthropic->gemini": "anthropic_to_gemini",
           "responses->anthropic": "responses_to_anthropic", "responses->gemini": "responses_to_gemini",
           "responses->openai": "responses_to_openai"}
n = 0
for d in ("anthropic", "gemini", "openai"):
    folder = os.path.join("tests/cases", d)
    for name in sorted(os.listdir(folder)):
        case = json.load(open(os.path.join(folder, name)))
        target = targets.get(case.get("direction"))
        if not target:
            continue
        os.makedirs(os.path.join(out, target), exist_ok=True)
        os.makedirs(os.path.join(out, "sse"), exist_ok=True)
        seeds = []
        if "client_request" in case:
            seeds.append(b"\x00" + json.dumps(case["client_request"]).encode())
        resp = case.get("upstream_response")
        if resp is not None:
            seeds.append(b"\x01" + (resp if isinstance(resp, str) else json.dumps(resp)).encode())
        stream = case.get("upstream_stream")
        if stream is not None:
            text = (stream if isinstance(stream, str) else "\n".join(stream) + "\n").encode()
            seeds.append(b"\x32" + text)  # stream mode, include_usage, finish
            with open(os.path.join(out, "sse", name), "wb") as f:
                f.write(b"\x03" + text)
        for i, s in enumerate(seeds):
            with open(os.path.join(out, target, "%s.%d" % (name, i)), "wb") as f:
                f.write(s)
            n += 1
print("fuzz: %d seeds from tests/cases" % n)

# The request reader: each golden client request as an HTTP/1.1 POST (sent
# whole, then in 7-byte reads), a chunked one with 100-continue, extensions
# and trailers, two pipelined GETs, and one of each strictness refusal (bare
# LF and CR, folding, space before a colon, versions, Host, codings, chunk
# framing) so that the fuzzer starts next to every rule.
os.makedirs(os.path.join(out, "request"), exist_ok=True)
reqs = [b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Expect: 100-continue\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b"3;a=b\r\nabc\r\n2 ;q=\"x\"\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"]
post = b"POST / HTTP/1.1\r\nHost: x\r\n"
chunked = post + b"Transfer-Encoding: chunked\r\n\r\n"
reqs += [chunked + b"3\r\nabcXX0\r\n\r\n", chunked + b"3\nabc\r\n0\r\n\r\n",
         chunked + b"0\r\nX-T : 1\r\n\r\n", chunked + b"fffffffffffffffff\r\n",
         b"GET / HTTP/1.1\nHost: x\n\n", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
         post + b"Content-Length : 1\r\n\r\nx", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
         b"GET /\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
         post + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
         post + b"Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n0\r\n\r\n"]
for d in ("anthropic", "openai"):
    folder = os.path.join("tests/cases", d)
    for name in sorted(os.listdir(folder))[:8]:
        case = json.load(open(os.path.join(folder, name)))
        if "client_request" in case:
            body = json.dumps(case["client_request"]).encode()
            reqs.append(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body) + body)
for i, r in enumerate(reqs):
    for step in (b"\xff", b"\x06"):
        with open(os.path.join(out, "request", "%d.%d" % (i, step[0])), "wb") as f:
            f.write(step + r)
print("fuzz: %d request seeds" % (2 * len(reqs)))

# The answer reader (fuzz_response.c): answers of every framing (length,
# chunked with extensions and trailers, close-delimited, 1xx first, 204,
# Connection: close, HTTP/1.0, bytes past the answer, an SSE stream) and
# some malformed ones, each read whole and in 1- and 7-byte reads, with and
# without pauses (the first byte).
os.makedirs(os.path.join(out, "response"), exist_ok=True)
body = b'{"id":"x","choices":[{"message":{"content":"hi"}}]}'
answers = [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
           b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
           b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body,
           b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
           b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
           b"HTTP/1.1 429 Too Many\r\nRetry-After: 2\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
           b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
           b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"e\r\ndata: {\"a\":1}\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n",
           b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok"]
for i, a in enumerate(answers):
    for mode in (b"\x3f", b"\x00", b"\x46"):
        with open(os.path.join(out, "response", "%d.%d" % (i, mode[0])), "wb") as f:
            f.write(mode + a)
print("fuzz: %d response seeds" % (3 * len(answers)))

# The URL builders (fuzz_paths.c): the first byte picks pass-through path
# (0), Gemini model (1), Azure deployment (2) or Azure v1 path (3); a NUL
# separates a query.
os.makedirs(os.path.join(out, "paths"), exist_ok=True)
paths = [b"\x00/chat/completions\x00a=1", b"\x00/../../etc/passwd", b"\x00/%2e%2e/x",
         b"\x00/.%2e/x", b"\x00/..%2f", b"\x00/\\..\\x", b"\x00/a//b/./c", b"\x00/x%00",
         b"\x00/..;/x", b"\x00/x\x00a=1#/../y", b"\x01gemini-2.5-flash", b"\x01../../escape",
         b"\x01models/x/..", b"\x02my-deployment\x00api-version=2024-10-21", b"\x02..",
         b"\x03/chat/completions", b"\x03/%2E%2E%2Fx"]
for i, p in enumerate(paths):
    with open(os.path.join(out, "paths", "%d" % i), "wb") as f:
        f.write(p)
print("fuzz: %d path seeds" % len(paths))

# OpenAI embeddings -> Gemini (fuzz_embeddings.c, through fuzz_translate.h):
# the first byte modulo 3 picks request (0) or answer (1), bit 2 base64.
os.makedirs(os.path.join(out, "embeddings"), exist_ok=True)
emb = [b"\x00" + json.dumps({"model": "m", "input": ["a b", "c"], "dimensions": 8}).encode(),
       b"\x03" + json.dumps({"input": "one", "encoding_format": "base64"}).encode(),
       b"\x00" + json.dumps({"input": [[1, 2], [3]]}).encode(),
       b"\x01" + json.dumps({"embeddings": [{"values": [0.5, -1, 0.25]}, {"values": [1]}]}).encode(),
       b"\x04" + json.dumps({"embeddings": [{"values": [1e38, -0.0, 3]}]}).encode()]
for i, s in enumerate(emb):
    with open(os.path.join(out, "embeddings", "%d" % i), "wb") as f:
        f.write(s)

# The prices file (fuzz_prices.c): LiteLLM-shaped documents.
os.makedirs(os.path.join(out, "prices"), exist_ok=True)
prices = [{"sample_spec": {"input_cost_per_token": "x"},
           "gpt-4o": {"input_cost_per_token": 2.5e-6, "output_cost_per_token": 1e-5,
                      "cache_read_input_token_cost": 1.25e-6, "max_output_tokens": 16384,
                      "litellm_provider": "openai", "mode": "chat"},
           "openai/m": {"input_cost_per_token": 1e-6, "litellm_provider": "openai",
                        "input_cost_per_token_above_200k_tokens": 2e-6,
                        "output_cost_per_token_above_200k_tokens": 3e-6}},
          {"m": {"input_cost_per_token": -1}}, {"m": 3}, []]
for i, p in enumerate(prices):
    with open(os.path.join(out, "prices", "%d" % i), "wb") as f:
        f.write(json.dumps(p).encode())
print("fuzz: %d embeddings and %d prices seeds" % (len(emb), len(prices)))

# Helicone's conventions (fuzz_helicone.c): the same bytes are read as a
# Helicone-Fallbacks header, a model string and a manual log.
os.makedirs(os.path.join(out, "helicone"), exist_ok=True)
helicone = [
    json.dumps(["anthropic/claude-x", {"provider": "local", "model": "m"}, {"provider": "anthropic"}]),
    json.dumps([{"target-url": "https://api.openai.com", "headers": {"X-Team": "a", "Authorization": "b"},
                 "onCodes": [{"from": 400, "to": 599}]}, {"target-url": "http://[::1]:9000/v1"}]),
    json.dumps([{"target-url": "http://127.0.0.1:8000/v1/x", "onCodes": [{"from": 500, "to": 503}]}]),
    "gpt-4o-mini/openai,claude-x/anthropic, fast ,l1/local",
    "openai/anthropic",
    json.dumps({"providerRequest": {"url": "u", "json": {"model": "gpt-4o"}, "meta": {"Helicone-User-Id": "u"}},
                "providerResponse": {"status": 200, "headers": {}, "json": {"model": "gpt-4o",
                                     "usage": {"prompt_tokens": 1, "completion_tokens": 2}}},
                "timing": {"startTime": {"seconds": 1, "milliseconds": 2},
                           "endTime": {"seconds": 3, "milliseconds": 4}, "timeToFirstToken": 5},
                "provider": "OPENAI"}),
    json.dumps({"providerRequest": {"json": {}}, "providerResponse": {"textBody":
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n"},
                "timing": {"startTime": {"seconds": 1}, "endTime": {"seconds": 1}}, "provider": "ANTHROPIC"}),
]
for i, s in enumerate(helicone):
    with open(os.path.join(out, "helicone", "%d" % i), "wb") as f:
        f.write(s.encode())
print("fuzz: %d helicone seeds" % len(helicone))

# The stored form of bodies: frames made by the lz4 tool (when it is
# there) of streamed answers and of bytes that begin with the frame magic,
# and both raw, for the round trip.
import shutil, subprocess
os.makedirs(os.path.join(out, "body"), exist_ok=True)
raw = [b"".join(b'data: {"choices":[{"delta":{"content":"t%d"}}]}\n\n' % i for i in range(60)),
       b"\x04\x22\x4d\x18" + b"x" * 40, b'{"model":"gpt-4o","messages":[]}' * 40]
frames = []
if shutil.which("lz4"):
    import tempfile
    for r in raw:
        # from a file: lz4 states the content size only when it knows it,
        # and the store's reader requires it
        with tempfile.NamedTemporaryFile() as f:
            f.write(r)
            f.flush()
            for opts in (["--content-size"], ["--content-size", "-BD", "-B4"], ["--content-size", "--no-frame-crc"]):
                p = subprocess.run(["lz4", "-c", "-q"] + opts + [f.name], capture_output=True)
                if p.returncode == 0:
                    frames.append(p.stdout)
for i, s in enumerate(raw + frames):
    with open(os.path.join(out, "body", "seed.%d" % i), "wb") as f:
        f.write(s)
print("fuzz: %d seeds for body" % (len(raw) + len(frames)))
