"""Prints the tokens the sidecar's sampler picks for given logits, parameters and seeds (JSON in
on argv[1], JSON out), so test/sidecar/sampling-parity.test.ts can compare them with the
gateway's TypeScript sampler."""

import json
import sys

import torch

from tiergate_sidecar.sampling import Mulberry32, SamplingParams, sample


def main() -> None:
    spec = json.loads(sys.argv[1])
    logits = torch.tensor(spec["logits"], dtype=torch.float32)
    out = []
    for case in spec["cases"]:
        params = SamplingParams(case["temperature"], case["topP"], case["topK"], case["seed"])
        rng = Mulberry32(params.seed)
        picks = [sample(logits, params, rng, 3) for _ in range(spec["draws"])]
        out.append({"tokens": [p.token for p in picks], "logprob0": picks[0].logprob,
                    "top": [[t, lp] for t, lp in picks[0].top]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
