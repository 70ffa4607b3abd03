#!/usr/bin/env bash
# Pruning benchmark (issue 5 acceptance) on the project's trained ResNet-8
# (Fashion-MNIST). Writes RESULTS-prune.md.
#
#  1. 80% global unstructured magnitude pruning, gradual (Zhu and Gupta's
#     cubic schedule, STEPS steps) with EPOCHS epochs of fine-tuning after
#     every step, by `compress prune` and by PyTorch's
#     torch.nn.utils.prune.global_unstructured (pytorch_prune.py: the same
#     starting weights read from the ONNX file, the same layers, schedule
#     and fine-tuning recipe).
#  2. 2:4 semi-structured sparsity, one shot, then NM_EPOCHS of fine-tuning.
#  3. 50% channel pruning (dependency groups through the residual adds,
#     channels removed), then CH_EPOCHS of fine-tuning; parameters, latency
#     (`compress bench`, batch 32, dense and pruned alternating, ROUNDS
#     rounds) and a check that onnxruntime runs the pruned files with our
#     outputs (prune/resnet_ort_test.go, build tag ort).
#
# Needs: the trained model (MODEL, default
# testdata/pretrained/resnet8-fashion.onnx, made with `compress models new --arch resnet --input 1x28x28 --classes 10
# --seed 0` then `compress finetune --epochs 8 --batch 64 --optimizer adam
# --lr 2e-3 --schedule cosine --scale 1/255 --seed 0`), Fashion-MNIST
# (FASHION), Debian's python3-torch and python3-onnx (/usr/bin/python3),
# and for the onnxruntime check node_modules/onnxruntime-node (skipped
# otherwise).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
model=${MODEL:-$root/testdata/pretrained/resnet8-fashion.onnx}
fashion=${FASHION:-/usr/share/datasets/fashion-mnist}
threads=${THREADS:-2}
steps=${STEPS:-4}
epochs=${EPOCHS:-1}
lr=${LR:-1e-3}
lr_schedule=${LR_SCHEDULE:-cosine}
batch=${BATCH:-64}
nm_epochs=${NM_EPOCHS:-1}
ch_epochs=${CH_EPOCHS:-4}
rounds=${ROUNDS:-5}
iters=${ITERS:-200}
out=${OUT:-$here/RESULTS-prune.md}
keep=${KEEP:-}   # directory to keep the pruned models and raw results in
reuse=${REUSE:-} # a KEEP directory of an earlier run: its results are reused, not rerun
scale=0.00392156862745098
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -f "$model" ] || { echo "run.sh: $model not found: set MODEL to the trained ResNet-8" >&2; exit 1; }

(cd "$root" && go build -o "$tmp/compress" ./cmd/compress)
cp /proc/loadavg "$tmp/load-start"
# timed NAME CMD...: runs CMD with its stdout to $tmp/NAME.json and its wall
# and CPU seconds to $tmp/NAME.time (or takes both, and the model file
# NAME wrote, from $reuse when it has them).
timed() {
	local name=$1
	shift
	if [ -n "$reuse" ] && [ -f "$reuse/$name.json" ] && [ -f "$reuse/$name.time" ]; then
		echo "  (reusing $reuse/$name.json)" >&2
		cp "$reuse/$name.json" "$reuse/$name.time" "$tmp/"
		[ -n "${model_of[$name]:-}" ] && cp "$reuse/${model_of[$name]}" "$tmp/"
		echo "$name" >>"$tmp/reused"
		return
	fi
	/usr/bin/time -f '{"wall": %e, "user": %U, "sys": %S}' -o "$tmp/$name.time" "$@" >"$tmp/$name.json"
}
declare -A model_of=([ours]=global80.onnx [nm]=nm24.onnx [channel]=channel50.onnx)
touch "$tmp/reused"
tune=(--data "$fashion" --batch "$batch" --optimizer adam --lr "$lr" --lr-schedule "$lr_schedule"
	--scale "$scale" --seed 0 --threads "$threads" --bench-time 0 --json)

echo "compress: 80% global, gradual in $steps steps x $epochs epoch(s)" >&2
timed ours "$tmp/compress" prune --model "$model" --out "$tmp/global80.onnx" --sparsity 0.8 --scope global \
	--schedule gradual --steps "$steps" --epochs "$epochs" "${tune[@]}"
echo "PyTorch: the same" >&2
timed pytorch /usr/bin/python3 "$here/pytorch_prune.py" "$model" "$fashion" --sparsity 0.8 --steps "$steps" \
	--epochs "$epochs" --batch "$batch" --lr "$lr" --lr-schedule "$lr_schedule" --scale "$scale" \
	--threads "$threads" --seed 0 --compress "$tmp/compress"
echo "compress: 2:4, $nm_epochs epoch(s)" >&2
timed nm "$tmp/compress" prune --model "$model" --out "$tmp/nm24.onnx" --method nm --pattern 2:4 \
	--epochs "$nm_epochs" "${tune[@]}"
echo "compress: 50% channels, $ch_epochs epoch(s)" >&2
timed channel "$tmp/compress" prune --model "$model" --out "$tmp/channel50.onnx" --method channel --sparsity 0.5 \
	--epochs "$ch_epochs" "${tune[@]}"

echo "latency: dense vs channel-pruned, batch 32, $rounds rounds" >&2
for r in $(seq 1 "$rounds"); do
	for m in dense channel50; do
		f=$model
		[ "$m" = channel50 ] && f=$tmp/channel50.onnx
		/usr/bin/time -f '{"wall": %e, "user": %U, "sys": %S}' -o "$tmp/t" \
			"$tmp/compress" bench --model "$f" --batch 32 --threads "$threads" --warmup 10 --iters "$iters" --json |
			/usr/bin/python3 -c 'import json, sys; b = json.load(sys.stdin); b["time"] = json.load(open(sys.argv[1])); print(json.dumps(b))' "$tmp/t" >>"$tmp/bench-$m.jsonl"
	done
done

echo "onnxruntime: the pruned files" >&2
if (cd "$root" && PRUNED_ONNX="$tmp/channel50.onnx:$tmp/global80.onnx:$tmp/nm24.onnx" \
	go test -tags ort -count=1 -run TestPrunedFilesRunInORT -v ./prune) >"$tmp/ort.txt" 2>&1; then
	echo ok >"$tmp/ort-status"
else
	echo FAILED >"$tmp/ort-status"
fi
cp /proc/loadavg "$tmp/load-end"
if [ -n "$keep" ]; then
	mkdir -p "$keep"
	cp "$tmp"/global80.onnx "$tmp"/nm24.onnx "$tmp"/channel50.onnx "$tmp"/*.json "$tmp"/*.time "$tmp"/*.jsonl "$tmp"/ort.txt "$keep"/
fi

/usr/bin/python3 - "$tmp" "$out" "$threads" "$steps" "$epochs" "$lr" "$lr_schedule" "$batch" "$nm_epochs" "$ch_epochs" "$rounds" "$iters" "$model" "$reuse" <<'PY'
import datetime, json, statistics, subprocess, sys
tmp, out, threads, steps, epochs, lr, lrs, batch, nm_ep, ch_ep, rounds, iters, model, reuse = sys.argv[1:]
reused = open(f"{tmp}/reused").read().split()
reuse_note = ""
if reused:
    reuse_note = (f"\n- reused from an earlier run of this script with the same settings (REUSE={reuse}): "
                  + ", ".join(reused))
    try:
        reuse_note += ": " + " ".join(open(f"{reuse}/NOTES").read().split())
    except OSError:
        pass
def load(name):
    return json.load(open(f"{tmp}/{name}.json")), json.load(open(f"{tmp}/{name}.time"))
ours, ours_t = load("ours")
pt, pt_t = load("pytorch")
nm, nm_t = load("nm")
ch, ch_t = load("channel")
base = ours["before"]["accuracy"]
def pts(a):
    return (a - base) * 100
def cpu(t):
    return t["user"] + t["sys"]
bench = {m: [json.loads(l) for l in open(f"{tmp}/bench-{m}.jsonl")] for m in ("dense", "channel50")}
def med(m, key):
    return statistics.median(key(b) for b in bench[m])
p50 = {m: med(m, lambda b: b["latency_p50_ms"]) for m in bench}
cpums = {m: med(m, lambda b: cpu(b["time"]) * 1000 / b["iterations"]) for m in bench}
ratios = [d["latency_p50_ms"] / c["latency_p50_ms"] for d, c in zip(bench["dense"], bench["channel50"])]
ort = open(f"{tmp}/ort-status").read().strip()
ort_lines = [l for l in open(f"{tmp}/ort.txt").read().splitlines() if "max abs" in l or "SKIP" in l or "FAIL" in l or l.startswith("ok")]
cpu_name = subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True, text=True).stdout.strip()
nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
load0, load1 = open(f"{tmp}/load-start").read().split()[:3], open(f"{tmp}/load-end").read().split()[:3]
def layer_table(r):
    rows = ["| layer | shape | sparsity |", "|---|---|---:|"]
    for l in r["layers"]:
        shape = "x".join(map(str, l["shape"]))
        if l["shape"] != l["shape_before"]:
            shape = "x".join(map(str, l["shape_before"])) + " -> " + shape
        rows.append(f"| {l['layer']} | {shape} | {l['sparsity']*100:.1f}%{'' if l['pruned'] else ' (dense)'} |")
    return "\n".join(rows)
ours_acc, pt_acc = ours["after"]["accuracy"], pt["accuracy_after"]
nm_acc, ch_acc = nm["after"]["accuracy"], ch["after"]["accuracy"]
def verdict(ok):
    return "met" if ok else "NOT met"
param_ratio = ch["before"]["params"] / ch["after"]["params"]
lat_ratio = p50["dense"] / p50["channel50"]
cpu_ratio = cpums["dense"] / cpums["channel50"]
# Sparsity over the pruned layers of our model.
pr = [l for l in ours["layers"] if l["pruned"]]
ours_sp = 1 - sum(l["nonzeros"] for l in pr) / sum(l["params"] for l in pr)
recipe = f"Adam lr {lr} ({lrs} schedule over each fine-tuning), batch {batch}, pixels x 1/255, seed 0, {threads} threads"
with open(out, "w") as f:
    f.write(f"""# Pruning benchmark: compress vs PyTorch (issue 5)

- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}
- machine: {cpu_name}, {nproc} CPUs, shared: load average {' '.join(load0)} at the start, {' '.join(load1)} at the end
  (wall-clock figures are stretched by other jobs; CPU seconds are given too)
- command: `bench/prune/run.sh` (MODEL={model} STEPS={steps} EPOCHS={epochs} LR={lr} LR_SCHEDULE={lrs}
  BATCH={batch} NM_EPOCHS={nm_ep} CH_EPOCHS={ch_ep} ROUNDS={rounds} ITERS={iters} THREADS={threads}){reuse_note}
- model: ResNet-8 (`compress models new --arch resnet --input 1x28x28 --classes 10 --seed 0`, 78k
  parameters, 16-32-64 channels, BatchNorm, residual adds), trained by `compress finetune` on
  Fashion-MNIST (8 epochs, Adam 2e-3 cosine, batch 64). Test set: the 10k Fashion-MNIST test images.
- baseline test accuracy: **{base*100:.2f}%** (compress); PyTorch with the same weights loaded from the
  ONNX file: {pt['accuracy_before']*100:.2f}% (logits equal to `compress run`'s within
  {pt.get('logits_max_abs_diff_vs_compress', float('nan')):.1e} on 16 test images).

## 80% global unstructured sparsity, gradual, with fine-tuning

Both prune the same {len(pt['pruned_layers'])} layers ({pt['pruned_params']} weights: every Conv but the
first; the first Conv and the final Gemm stay dense, `compress prune`'s default) by global L1 magnitude
along the cubic schedule s_t = 0.8 (1 - (1 - t/{steps})^3), t = 1..{steps}, with {epochs} epoch(s) of
fine-tuning after every step ({recipe}; a fresh optimizer and learning-rate schedule per step; masks
in force, BatchNorm in training mode).

```
compress prune --model M --out global80.onnx --sparsity 0.8 --scope global --schedule gradual --steps {steps} \\
    --epochs {epochs} --data fashion-mnist --batch {batch} --optimizer adam --lr {lr} --lr-schedule {lrs} \\
    --scale 0.00392156862745098 --seed 0 --threads {threads} --bench-time 0 --json
/usr/bin/python3 bench/prune/pytorch_prune.py M fashion-mnist --sparsity 0.8 --steps {steps} --epochs {epochs} \\
    --batch {batch} --lr {lr} --lr-schedule {lrs} --threads {threads} --compress compress
```

| run | sparsity of the pruned layers | test accuracy | points lost | wall s | CPU s |
|---|---:|---:|---:|---:|---:|
| compress prune | {ours_sp*100:.2f}% | {ours_acc*100:.2f}% | {-pts(ours_acc):.2f} | {ours_t['wall']:.0f} | {cpu(ours_t):.0f} |
| PyTorch global_unstructured | {pt['sparsity_reached']*100:.2f}% | {pt_acc*100:.2f}% | {-pts(pt_acc):.2f} | {pt_t['wall']:.0f} | {cpu(pt_t):.0f} |

(Wall and CPU seconds are the whole command: loading, evaluating before and after, pruning, fine-tuning.)

- loses at most 1.0 point: {verdict(-pts(ours_acc) <= 1.0)} ({-pts(ours_acc):.2f})
- within 0.5 points of PyTorch: {verdict(abs(ours_acc - pt_acc) * 100 <= 0.5)} (compress - PyTorch = {(ours_acc - pt_acc)*100:+.2f})

{layer_table(ours)}

## 2:4 semi-structured sparsity

```
compress prune --model M --out nm24.onnx --method nm --pattern 2:4 --epochs {nm_ep} --data fashion-mnist ...(as above)
```

Every pruned layer keeps 2 of every 4 consecutive weights along the reduction dimension; one-shot,
then {nm_ep} epoch(s) of fine-tuning with the mask. Test accuracy {nm_acc*100:.2f}%, {-pts(nm_acc):.2f}
points lost: {verdict(-pts(nm_acc) <= 1.0)} (at most 1.0). Wall {nm_t['wall']:.0f} s, CPU {cpu(nm_t):.0f} s.

## 50% structured channel pruning

```
compress prune --model M --out channel50.onnx --method channel --sparsity 0.5 --epochs {ch_ep} --data fashion-mnist ...(as above)
compress bench --model M|channel50.onnx --batch 32 --threads {threads} --warmup 10 --iters {iters} --json   # alternating, {rounds} rounds
```

Channels ranked by the L1 norm of their filters; dependency groups through the residual adds and the
1x1 downsampling shortcuts; the group of the stem Conv (kept dense as the first layer) and the
classifier's outputs stay whole. Then {ch_ep} epoch(s) of fine-tuning.

| | dense | channel-pruned | ratio |
|---|---:|---:|---:|
| parameters | {ch['before']['params']} | {ch['after']['params']} | {param_ratio:.2f}x |
| MACs | {ch['before']['macs']} | {ch['after']['macs']} | {ch['before']['macs']/ch['after']['macs']:.2f}x |
| file bytes | {ch['before']['file_bytes']} | {ch['after']['file_bytes']} | {ch['before']['file_bytes']/ch['after']['file_bytes']:.2f}x |
| latency p50, batch 32 (ms, median of rounds) | {p50['dense']:.3f} | {p50['channel50']:.3f} | {lat_ratio:.2f}x |
| CPU time per batch (ms, median of rounds) | {cpums['dense']:.3f} | {cpums['channel50']:.3f} | {cpu_ratio:.2f}x |
| test accuracy | {base*100:.2f}% | {ch_acc*100:.2f}% | {pts(ch_acc):+.2f} pts |

Per-round latency ratios: {', '.join(f'{r:.2f}' for r in ratios)}. CPU time per batch is the bench
process's user+system time over its runs (start-up and warm-up included).

- at least 2x fewer parameters: {verdict(param_ratio >= 2)} ({param_ratio:.2f}x)
- at least 1.6x lower latency: {verdict(lat_ratio >= 1.6)} ({lat_ratio:.2f}x; CPU time {cpu_ratio:.2f}x)
- at most 2 points lost: {verdict(-pts(ch_acc) <= 2)} ({-pts(ch_acc):.2f})
- runs in onnxruntime with our outputs (`PRUNED_ONNX=... go test -tags ort -run TestPrunedFilesRunInORT ./prune`,
  also for the 80% and 2:4 files): {ort}

```
{chr(10).join(ort_lines)}
```

{layer_table(ch)}
""")
print(open(out).read())
PY
