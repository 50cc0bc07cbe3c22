#!/usr/bin/env python3
"""Development adapter: runs a filter through the installed Fail2ban Python package
and prints one JSON object per failure, the interface /work/shared/tools/corpus.py
expects from `logban regex --json`.

usage: f2b-regex-json.py regex --json --now EPOCH -c CONFDIR [-d PATTERN] FILE FILTERSPEC

FILTERSPEC is a filter name with optional options (`postfix[mode=extra]`), read from
CONFDIR/filter.d with Fail2ban's own reader. Each failregex that matches a line gives
its own object (check-all mode, as in Fail2ban's sample test); no-fail and pending
matches are left out. Fields: "line" (1-based line number in FILE), "fid", "time"
(epoch seconds), "regex" (index of the failregex) and the named captures.

It exists to check logban's configuration tree (defaults/) against the real Fail2ban
before logban's own regex tool exists; it uses Fail2ban's API and contains none of its
code. Needs the `fail2ban` Python package (Debian: apt-get install fail2ban).
"""
import argparse
import json
import sys

try:
    import fail2ban  # noqa: F401
except ImportError:
    # Debian installs the package for the system interpreter only.
    sys.path.append("/usr/lib/python3/dist-packages")

from fail2ban.client.filterreader import FilterReader
from fail2ban.helpers import extractOptions
from fail2ban.server.filter import Filter
from fail2ban.server.mytime import MyTime


def parse_args(argv):
    p = argparse.ArgumentParser(prog="f2b-regex-json.py")
    p.add_argument("command", choices=["regex"])
    p.add_argument("--json", action="store_true", required=True)
    p.add_argument("--now", type=float, required=True)
    p.add_argument("-c", dest="confdir", required=True)
    p.add_argument("-d", dest="datepattern")
    p.add_argument("file")
    p.add_argument("filterspec")
    return p.parse_args(argv)


def build_filter(confdir, spec):
    """A Fail2ban Filter set up from CONFDIR/filter.d/NAME.conf with SPEC's options."""
    name, opts = extractOptions(spec)
    reader = FilterReader(name, "adapter", opts, basedir=confdir)
    if not reader.read():
        raise SystemExit("cannot read filter %r from %s/filter.d" % (name, confdir))
    reader.getOptions({})
    flt = Filter(None)
    flt.checkAllRegex = True
    flt.returnRawHost = True
    flt.checkFindTime = False
    flt.active = True
    setters = {
        "prefregex": lambda v: setattr(flt, "prefRegex", v),
        "addfailregex": flt.addFailRegex,
        "addignoreregex": flt.addIgnoreRegex,
        "maxlines": flt.setMaxLines,
        "datepattern": flt.setDatePattern,
    }
    for cmd in reader.convert():
        kind, _, key, value = cmd[0], cmd[1], cmd[2], cmd[3:]
        values = value[0] if kind == "multi-set" else [value[0] if len(value) == 1 else value]
        setter = setters.get(key)
        if setter is None:
            continue  # usedns, journalmatch: not relevant for matching text
        for v in values:
            setter(v)
    return flt


def jsonable(value):
    if isinstance(value, (set, frozenset)):
        return sorted(map(str, value))
    if isinstance(value, (list, tuple)):
        return ["".join(v) if isinstance(v, (list, tuple)) else str(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def main(argv):
    args = parse_args(argv)
    MyTime.setTime(args.now)
    flt = build_filter(args.confdir, args.filterspec)
    if args.datepattern:
        flt.setDatePattern(args.datepattern)
    out = sys.stdout
    with open(args.file, encoding="utf-8", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            for regex_idx, fid, date, fail in flt.processLine(line.rstrip("\r\n")) or ():
                if fid is None or fail.get("nofail"):
                    continue
                obj = {"line": lineno, "fid": str(fid), "time": date, "regex": regex_idx}
                for k, v in fail.items():
                    if k not in obj and v is not None and not k.startswith("nofail"):
                        obj[k] = jsonable(v)
                out.write(json.dumps(obj, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
