#!/usr/bin/env bash
# Transfer-learning benchmark (docs/BENCHMARKS.md, issue 3): mnist-8 with
# both convolutions frozen and a new 10-class head, fine-tuned on
# Fashion-MNIST (raw pixels, Adam 1e-3, batch 128, 3 epochs, seed 0,
# 2 threads), by PyTorch (Debian) and by compress, with and without
# --cache-frozen, alternating, ROUNDS times. Writes RESULTS-transfer.md.
#
# Needs: ../shared/models/mnist-8 (or MNIST8=DIR), dataset-fashion-mnist,
# python3-torch and python3-onnx (Debian's /usr/bin/python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
model=${MNIST8:-$root/../shared/models/mnist-8}/model.onnx
fashion=${FASHION:-/usr/share/datasets/fashion-mnist}
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
out=${OUT:-$here/RESULTS-transfer.md}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$root" && go build -o "$tmp/compress" ./cmd/compress)
compact() { /usr/bin/python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)))'; }
recipe=(--freeze-until Pooling160 --num-classes 10 --epochs 3 --batch 128 --optimizer adam --lr 1e-3 --seed 0 --threads "$threads")
for r in $(seq 1 "$rounds"); do
	echo "round $r/$rounds" >&2
	/usr/bin/python3 "$here/pytorch_transfer.py" "$model" "$fashion" --threads "$threads" >>"$tmp/pytorch.jsonl"
	"$tmp/compress" finetune --model "$model" --data "$fashion" --out "$tmp/ft.onnx" "${recipe[@]}" --json | compact >>"$tmp/compress.jsonl"
	"$tmp/compress" finetune --model "$model" --data "$fashion" --out "$tmp/ftc.onnx" "${recipe[@]}" --cache-frozen --json | compact >>"$tmp/cached.jsonl"
	cmp -s "$tmp/ft.onnx" "$tmp/ftc.onnx" && echo same >>"$tmp/identical" || echo different >>"$tmp/identical"
done

/usr/bin/python3 - "$tmp" "$out" "$threads" <<'PY'
import json, statistics, subprocess, sys, datetime
tmp, out, threads = sys.argv[1], sys.argv[2], sys.argv[3]
def load(name):
    return [json.loads(l) for l in open(f"{tmp}/{name}.jsonl") if l.strip()]
pt, cp, cc = load("pytorch"), load("compress"), load("cached")
pt_sps = statistics.median(r["samples_per_sec"] for r in pt)
cp_sps = statistics.median(r["train"]["samples_per_sec"] for r in cp)
cc_sps = statistics.median(r["train"]["samples_per_sec"] for r in cc)
pt_acc, cp_acc, cc_acc = pt[0]["accuracy"], cp[0]["accuracy"], cc[0]["accuracy"]
cpu = subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True, text=True).stdout.strip()
nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
same = open(f"{tmp}/identical").read().split()
with open(out, "w") as f:
    f.write(f"""# Transfer-learning benchmark: compress vs PyTorch

Recipe (docs/BENCHMARKS.md): mnist-8 with both convolutions frozen
(`--freeze-until Pooling160`), a new 10-class head (Xavier-uniform, zero bias,
seed 0), Fashion-MNIST 60k/10k with raw 0..255 pixels, Adam lr 1e-3, batch
128, 3 epochs, {threads} threads. PyTorch: {pt[0]['framework']} (Debian),
`bench/transfer/pytorch_transfer.py`. Samples/s counts training steps with
batch preparation; for `--cache-frozen` it also includes computing the
frozen prefix once. Median of {len(pt)} alternating rounds.

- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}
- machine: {cpu}, {nproc} CPUs (shared; compare ratios)
- command: `bench/transfer/run.sh` (ROUNDS={len(pt)})

| run | test accuracy | training samples/s | vs PyTorch |
|---|---:|---:|---:|
| PyTorch | {pt_acc*100:.2f}% | {pt_sps:,.0f} | 1.00x |
| compress finetune | {cp_acc*100:.2f}% | {cp_sps:,.0f} | {cp_sps/pt_sps:.2f}x |
| compress finetune --cache-frozen | {cc_acc*100:.2f}% | {cc_sps:,.0f} | {cc_sps/pt_sps:.2f}x |

Accuracy difference compress - PyTorch: {(cp_acc-pt_acc)*100:+.2f} points
(target: within 0.5). Cached and uncached compress models byte-identical:
{', '.join(same)}.

Per-round samples/s: PyTorch {[round(r['samples_per_sec']) for r in pt]},
compress {[round(r['train']['samples_per_sec']) for r in cp]},
cached {[round(r['train']['samples_per_sec']) for r in cc]}.
""")
print(open(out).read())
PY
