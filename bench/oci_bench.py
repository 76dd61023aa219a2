#!/usr/bin/env python3
"""OCI runtime start-up benchmark: create + start + wait + delete of /bin/true in one bundle.

Usage (root): bench/oci-bench.sh [RUNS]  -- the wrapper hides the unified cgroup mount in a
private mount namespace so that crun runs on a hybrid host, and runs this script there.

Every runtime gets its own --root and runs the same bundle; runs alternate between runtimes
(round-robin, rotating the order each round) so that machine noise hits all of them alike.
Each round times one `RUNTIME run --bundle B ID` (create + start + wait + delete in one
command) and then the separate commands create, start and delete (after polling `state` until
the container has stopped; the polling is not timed).
Reported: median and p90 wall time per run, per-step medians, the peak RSS of any runtime
command (GNU time, separate untimed runs), and ratios against runc and crun measured in the
same session.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run_once(cmd):
    # stderr goes to a file, not a pipe: a created container's init keeps the runtime's stdio.
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=err)
        _, status, _ = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({code}): {err.read().decode()}")
    return elapsed


def peak_rss_kib(cmd):
    """Peak RSS of one command, through GNU time: a process forked from this (large) Python
    would carry Python's own high-water mark into ru_maxrss."""
    with tempfile.NamedTemporaryFile(mode="r") as out:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name] + cmd, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        return int(out.read().strip().splitlines()[-1])


def make_bundle(path):
    rootfs = os.path.join(path, "rootfs")
    for d in ("bin", "proc", "sys", "dev", "etc", "tmp"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
    for tool in ("sh", "true"):
        os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    subprocess.run(["runc", "spec", "--bundle", path], check=True)
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    berth = os.environ.get("BERTH_OCI", "build-release/cmd/berth-oci")
    runtimes = {"berth-oci": os.path.abspath(berth)}
    # RUNTIMES="berth-oci crun" leaves runc out of the alternation (runc's exit leaves kernel
    # work behind, cgroup teardown among it, that the next runtime to run pays part of).
    wanted = os.environ.get("RUNTIMES", "berth-oci runc crun").split()
    for name in ("runc", "crun"):
        if name in wanted and shutil.which(name):
            runtimes[name] = shutil.which(name)
    work = tempfile.mkdtemp(prefix="oci-bench.", dir="/var/tmp")
    try:
        bundle = os.path.join(work, "bundle")
        make_bundle(bundle)
        roots = {n: os.path.join(work, "state-" + n) for n in runtimes}
        times = {n: [] for n in runtimes}
        steps = {n: {"create": [], "start": [], "delete": []} for n in runtimes}
        rss = {n: 0 for n in runtimes}
        names = list(runtimes)
        for warm in range(3):  # page cache, lazy binding
            for n in names:
                run_once([runtimes[n], "--root", roots[n], "run", "--bundle", bundle, f"{n}-w{warm}"])
        for n in names:  # peak RSS of each command, untimed
            for k in range(3):
                cid = f"{n}-m{k}"
                for step in (["run", "--bundle", bundle, cid + "r"], ["create", "--bundle", bundle, cid],
                             ["start", cid]):
                    rss[n] = max(rss[n], peak_rss_kib([runtimes[n], "--root", roots[n]] + step))
                time.sleep(0.05)
                rss[n] = max(rss[n], peak_rss_kib([runtimes[n], "--root", roots[n], "delete", "-f", cid]))
        for i in range(runs):
            order = names[i % len(names):] + names[:i % len(names)]
            for n in order:
                times[n].append(run_once([runtimes[n], "--root", roots[n], "run", "--bundle",
                                          bundle, f"{n}-r{i}"]))
                # The same as separate commands: create, start, delete after exit.
                cid = f"{n}-s{i}"
                t1 = run_once([runtimes[n], "--root", roots[n], "create", "--bundle", bundle, cid])
                t2 = run_once([runtimes[n], "--root", roots[n], "start", cid])
                # /bin/true exits at once; delete waits for nothing but must see it stopped.
                deadline = time.time() + 5
                while time.time() < deadline:
                    out = subprocess.run([runtimes[n], "--root", roots[n], "state", cid],
                                         capture_output=True, text=True).stdout
                    if '"stopped"' in out:
                        break
                    time.sleep(0.001)
                t3 = run_once([runtimes[n], "--root", roots[n], "delete", cid])
                steps[n]["create"].append(t1)
                steps[n]["start"].append(t2)
                steps[n]["delete"].append(t3)

        def ms(v):
            return f"{v * 1000:.2f}"

        def p90(v):
            return sorted(v)[int(len(v) * 0.9) - 1]

        print(f"# {runs} runs each, alternating; bundle: busybox /bin/true; "
              f"kernel {os.uname().release}")
        print("| runtime | run: median ms | p90 ms | create / start / delete median ms "
              "| peak RSS MiB |")
        print("|---|---|---|---|---|")
        med = {n: statistics.median(times[n]) for n in names}
        for n in names:
            s = steps[n]
            print(f"| {n} | {ms(med[n])} | {ms(p90(times[n]))} | "
                  f"{ms(statistics.median(s['create']))} / {ms(statistics.median(s['start']))} / "
                  f"{ms(statistics.median(s['delete']))} | {rss[n] / 1024:.1f} |")
        for peer in ("runc", "crun"):
            if peer in med:
                print(f"berth-oci / {peer} (run median): {med['berth-oci'] / med[peer]:.2f}x")
    finally:
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
