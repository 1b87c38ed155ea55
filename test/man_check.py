#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The man pages (docs/man) render with no warning and say what the binaries do:

- each renders with `groff -man -ww -z` and `mandoc -T lint` without a message;
- every option each binary prints in its --help (hfctl: each command's too) appears in its
  page, and every command of hfctl and ckptctl;
- every holdfast.conf setting the parser takes (app/fw_config.c, the modules' settings and
  timeout names) appears in holdfast.8.

So neither can change without the other. Run by meson (test `man`) with BUILD and SRC set.
"""
import glob
import os
import re
import subprocess
import sys

SRC, BUILD = os.environ["SRC"], os.environ["BUILD"]
MAN = os.path.join(SRC, "docs", "man")
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)")
bad = []


def run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def rendered(page):
    """The page as text (mandoc, ASCII, no overstrike, lines unbroken)."""
    rc, out = run("mandoc", "-T", "ascii", "-O", "width=1000", page)
    if rc != 0:
        bad.append(f"{page}: mandoc -T ascii failed: {out}")
    return re.sub(r".\x08", "", out)


def has(text, word):
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text) is not None


def commands(help_text):
    """The commands a usage lists under "commands:" (the first word of each entry)."""
    part = help_text.split("commands:", 1)[1] if "commands:" in help_text else ""
    return [m.group(1) for m in re.finditer(r"^  ([a-z]+)\b", part, re.M)]


def helps():
    """Each binary's --help texts."""
    hf = os.path.join(SRC, "app", "hfctl")
    ckptsrv = os.path.join(BUILD, "ckptsrv", "ckptsrv")
    out = {
        "holdfast": [run(os.path.join(BUILD, "holdfast"), "--", "--help")],
        "ckptsrv": [run(ckptsrv, "--help")],
        "ckptctl": [run(os.path.join(BUILD, "ckptsrv", "ckptctl"), "--help")],
        "hfctl": [run(hf, "--help")],
    }
    for c in commands(out["hfctl"][0][1]):
        out["hfctl"].append(run(hf, c, "--help") if c != "json" else run(hf, "json", "--help"))
    return out


def conf_keys():
    """Every holdfast.conf setting: the parser's keywords, the modules' own and timeouts."""
    keys = set()
    for f in [os.path.join(SRC, "app", "fw_config.c")] + glob.glob(
            os.path.join(SRC, "modules", "*", "*.c")):
        text = open(f).read()
        keys |= set(re.findall(r'strcmp\(w\[0\], "([a-z0-9-]+)"\)', text))
        for arr in re.findall(r"conf_timeouts\[\] = \{([^}]*)\}", text):
            keys |= set(re.findall(r'"([a-z0-9-]+)"', arr))
    return keys


def main():
    pages = {os.path.basename(p)[:-2]: p for p in glob.glob(os.path.join(MAN, "*.8"))}
    for name, page in sorted(pages.items()):
        rc, out = run("groff", "-man", "-ww", "-z", page)
        if rc != 0 or out:
            bad.append(f"{page}: groff -man -ww -z: {out.strip() or 'exit %d' % rc}")
        rc, out = run("mandoc", "-T", "lint", page)
        if rc != 0 or out:
            bad.append(f"{page}: mandoc -T lint: {out.strip() or 'exit %d' % rc}")
    for name, texts in helps().items():
        if name not in pages:
            bad.append(f"{name}: no page in docs/man")
            continue
        text = rendered(pages[name])
        n = 0
        for rc, h in texts:
            if rc != 0:
                bad.append(f"{name} --help: exit {rc}: {h}")
            opts = set(OPTION.findall(h))
            # ckptsrv's "--LIMIT N": the limits its help names, each an option.
            if "--LIMIT" in opts:
                opts.discard("--LIMIT")
                limits = h.split("LIMIT:", 1)[1].split('"', 1)[0]
                opts |= {"--" + w for w in re.findall(r"\b([a-z][a-z-]+[a-z])\b", limits)
                         if w not in ("or", "with")}
            for o in sorted(opts | set(commands(h))):
                n += 1
                if not has(text, o):
                    bad.append(f"{pages[name]}: no {o} (in {name}'s --help)")
        print(f"{name}: {n} options and commands of --help, all in {os.path.basename(pages[name])}")
    keys = conf_keys()
    text = rendered(pages["holdfast"])
    for k in sorted(keys):
        if not has(text, k):
            bad.append(f"{pages['holdfast']}: no holdfast.conf setting {k}")
    print(f"holdfast.conf: {len(keys)} settings, all in holdfast.8")
    for b in bad:
        print("FAIL:", b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
