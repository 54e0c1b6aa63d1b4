#!/usr/bin/env python3
"""Picks at most N files of a merged corpus that keep most of its coverage: a greedy cover of
the edges listed in a libFuzzer merge control file (`-merge=1 -merge_control_file=CTL`), each
step taking the file that adds the most edges not yet covered (the smaller on a tie), until N
files or no file adds an edge. Prints how much of the coverage the pick keeps.

    fuzz/pick.py CTL N DEST      # copies the picked files into DEST
"""

import pathlib
import shutil
import sys


def main():
    ctl, limit, dest = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
    lines = pathlib.Path(ctl).read_text().splitlines()
    nfiles = int(lines[0])
    files = lines[2:2 + nfiles]
    cov = {}
    for line in lines[2 + nfiles:]:
        if line.startswith("COV "):
            _, idx, *edges = line.split()
            cov[int(idx)] = set(map(int, edges))
    total = set().union(*cov.values()) if cov else set()
    covered, picked = set(), []
    size = {i: pathlib.Path(files[i]).stat().st_size for i in cov}
    while len(picked) < limit:
        best = max(cov, key=lambda i: (len(cov[i] - covered), -size[i]), default=None)
        if best is None or not cov[best] - covered:
            break
        covered |= cov.pop(best)
        picked.append(best)
    dest.mkdir(parents=True, exist_ok=True)
    for i in picked:
        shutil.copy(files[i], dest / pathlib.Path(files[i]).name)
    print(f"{len(picked)} of {nfiles} files keep {len(covered)} of {len(total)} edges "
          f"({100 * len(covered) / max(1, len(total)):.1f}%), "
          f"{sum(size[i] for i in picked)} bytes")


if __name__ == "__main__":
    main()
