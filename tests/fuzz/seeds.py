"""Seed corpora for the fuzz targets, cut from the golden cases
(tests/cases): each case's client request, provider answer and provider
stream, behind the mode byte fuzz_translate.h reads. Usage: seeds.py OUTDIR"""
import json, os, sys

out = sys.argv[1]
targets = {"openai->anthropic": "openai_to_anthropic", "openai->gemini": "openai_to_gemini",
           "anthropic->openai": "anthropic_to_openai", "anthropic->gemini": "anthropic_to_gemini"}
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
