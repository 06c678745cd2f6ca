"""Runs lenet's own measurements and the reference peers in one go; prints Markdown rows.
Called by Scripts/benchmark/benchmark.sh, which builds lenet and provides the virtualenv."""
import json, os, platform, re, resource, subprocess, sys, time

data = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
lenet = os.path.join(here, "..", "..", ".build", "release", "lenet")

def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout

def timed_peak(cmd):
    """(stdout, wall seconds, peak RSS MB) of a child process."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = run(cmd)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return out, time.perf_counter() - start, max(peak, before) / 1024

def run_time(text):
    h, m, s = re.search(r"Run time: (\d+):(\d+):([\d.]+)", text).groups()
    return int(h) * 3600 + int(m) * 60 + float(s)

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"machine: {cpu}, {os.cpu_count()} vCPUs; date: {time.strftime('%Y-%m-%d')}")

# lenet: the full tutorial run (8 epochs, test after each), both variants, then bench.
plain_out, _, plain_peak = timed_peak([lenet, "train", "--data-dir", data, "--no-download"])
bn_out, _, _ = timed_peak([lenet, "train", "--model", "lenet-bn", "--data-dir", data, "--no-download"])
plain_run, bn_run = run_time(plain_out), run_time(bn_out)
# `lenet bench` without --threads measures 1 thread and every core, and the FMA peak on
# 1 thread and on all of them in the same process, before and after (the higher counts; how
# far apart the two were is `peakVariation`): one JSON line per thread count.
bench_lines = run([lenet, "bench", "--data-dir", data, "--json"]).splitlines()
bench = {b["threads"]: b for b in map(json.loads, bench_lines)}
cores = max(bench)
one, every = bench[1], bench[cores]
peak1, peak_all = one["peakSingleThreadGFLOPS"], every["peakGFLOPS"]
best = max(bench.values(), key=lambda b: b["trainImagesPerSecond"])

# Peers, in the same run.
torch_out = run([sys.executable, os.path.join(here, "pytorch_lenet.py"), data, "--epochs", "1", "--threads", "1"])
torch_epoch = float(re.search(r"seconds: ([\d.]+)", torch_out).group(1))
_, _, torch_peak = timed_peak([sys.executable, os.path.join(here, "pytorch_lenet.py"), data, "--epochs", "1", "--threads", "1"])
infers = [dict(re.findall(r"^(\S+ \S+): ([\d.]+)$", run([sys.executable, os.path.join(here, "ort_infer.py"), data, str(t)]), re.M))
          for t in sorted({1, cores})]
ort_ips = max(float(i["onnxruntime batch1000_images_per_second"]) for i in infers)
ort_lat = min(float(i["onnxruntime batch1_latency_us"]) for i in infers)
pt_ips = max(float(i["pytorch batch1000_images_per_second"]) for i in infers)
pt_lat = min(float(i["pytorch batch1_latency_us"]) for i in infers)

epoch = plain_run / 8
print("| figure | lenet | peer (same run) | ratio |")
print("| --- | --- | --- | --- |")
print(f"| tutorial run, 8 epochs + 8 evaluations (plain) | {plain_run:.2f} s | PyTorch eager 1 thread, 8 x one epoch: {8 * torch_epoch:.1f} s | {plain_run / (8 * torch_epoch):.3f} |")
print(f"| one epoch (train + test) | {epoch:.2f} s | PyTorch eager, preloaded tensors, 1 thread: {torch_epoch:.2f} s | {epoch / torch_epoch:.3f} |")
print(f"| BatchNorm variant, 8 epochs | {bn_run:.2f} s | plain LeNet: {plain_run:.2f} s | {bn_run / plain_run:.2f}x |")
print(f"| FMA peak (PeakProbe), 1 thread / {cores} threads | {peak1:.1f} / {peak_all:.1f} GFLOP/s ({peak_all / peak1:.2f}x) | before and after the runs {every.get('peakVariation', 0):.0%} apart | |")
for t, b in sorted(bench.items()):
    print(f"| training throughput, {t} thread(s) | {b['trainImagesPerSecond']:.0f} images/s | {b['trainFractionOfPeak']:.0%} of the {t}-thread peak | |")
speedup = every["trainImagesPerSecond"] / one["trainImagesPerSecond"]
print(f"| training speed-up, 1 -> {cores} threads | {speedup:.2f}x | FMA probe: {peak_all / peak1:.2f}x | {speedup / (peak_all / peak1):.0%} of the probe's |")
inference = every["inferenceImagesPerSecond"]
print(f"| inference, batch 1000, {cores} threads | {inference:.0f} images/s ({every['inferenceFractionOfPeak']:.0%} of peak) | ONNX Runtime best of 1/{cores} threads: {ort_ips:.0f}; PyTorch: {pt_ips:.0f} | {inference / ort_ips:.2f}x ORT |")
print(f"| batch-1 latency, in process | {min(b['batch1LatencyMicroseconds'] for b in bench.values()):.1f} us | ONNX Runtime: {ort_lat:.1f} us; PyTorch: {pt_lat:.1f} us | |")
print(f"| peak resident memory, full training run | {plain_peak:.0f} MB | PyTorch one epoch: {torch_peak:.0f} MB | |")
print(f"| data load, 70,000 images | {best['loadSeconds']:.3f} s | | |")
tflop = 1.151e12  # 8 x (60,000 x 2.26 MFLOP + 10,000 x 0.83 MFLOP)
print(f"| tutorial run as a fraction of the {cores}-thread FMA peak ({tflop / (peak_all * 1e9):.1f} s at {peak_all:.0f} GFLOP/s) | {tflop / plain_run / (peak_all * 1e9):.0%} | | |")
