# Test oracle for logban's filter engine: runs the installed Fail2ban (read at
# test time, never copied) and prints what it does as JSON.
#
#   oracle.py filters                 resolved regexes of every stock filter variant
#   oracle.py corpus CHECKALL RAW DNS  per-line results of Fail2ban's Filter on the corpus
#   oracle.py report                  fail2ban-regex statistics on the corpus
#   oracle.py search                  stdin: [[regex, usedns, subject(, multiline)], ...] -> Fail2ban's Regex results
#   oracle.py classes                 code points Python's \s, \w, \d match
#   oracle.py pton                    stdin: [text, ...] -> inet_pton results
#   oracle.py decode                  stdin: [hex bytes, ...] -> UTF-8 decoded with errors='replace'
import io
import json
import os
import re
import socket
import sys
import contextlib

os.environ["TZ"] = "CET-01CEST-02,M3.5.0,M10.5.0"
import time
time.tzset()

from fail2ban.client.filterreader import FilterReader
from fail2ban.server.filter import Filter
from fail2ban.server.failregex import Regex, RegexException
from fail2ban.server.mytime import MyTime

CONFIG_DIR = "/etc/fail2ban"
LOGS = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs"
NOW = 1124013600
NOW_STR = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(NOW))


def stock_filters():
    names = sorted(f[:-5] for f in os.listdir(os.path.join(CONFIG_DIR, "filter.d"))
                   if f.endswith(".conf") and not f.endswith("common.conf"))
    return names


def read_filter(name, opts):
    """Resolved options of filter `name` with `opts`, as the sample test reads them."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        r = FilterReader(name, "jail", dict(opts), basedir=CONFIG_DIR, share_config={})
        r.read()
        r.getOptions({})
        cmds = r.convert()
    d = {"name": name, "opts": opts, "prefregex": None, "failregex": [], "ignoreregex": [],
         "maxlines": 1, "datepattern": None}
    for opt in cmds:
        vals = opt[3] if opt[0] == "multi-set" else [opt[3]]
        for v in vals:
            if opt[2] == "prefregex":
                d["prefregex"] = v
            elif opt[2] == "addfailregex":
                d["failregex"].append(v)
            elif opt[2] == "addignoreregex":
                d["ignoreregex"].append(v)
            elif opt[2] == "maxlines":
                d["maxlines"] = int(v)
            elif opt[2] == "datepattern":
                d["datepattern"] = v
    return d


def corpus_variants():
    """Every (filter, options) variant of the sample test with the lines it
    sees, in order: {key: (name, opts, logtype, [lines])}."""
    variants = {}
    order = []
    for name in stock_filters():
        filenames = [name]
        i = 0
        common = {}
        current = None
        while i < len(filenames):
            fn = filenames[i]
            i += 1
            with open(os.path.join(LOGS, fn), encoding="utf-8") as fh:
                lines = fh.read().split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            ignore_block = False
            faildata = {}
            k = 0
            while k < len(lines):
                line = lines[k]
                k += 1
                m = re.match(r"^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$", line)
                if m:
                    data = json.loads(m.group(2))
                    if m.group(1) == "fileOptions":
                        common = data
                        continue
                    if m.group(1) == "filterOptions":
                        current = []
                        ignore_block = False
                        for fd in (data if isinstance(data, list) else [data]):
                            opts = dict(common)
                            opts.update(fd)
                            if opts.get("test.condition"):
                                ignore_block = not eval(opts.get("test.condition"))
                            if not ignore_block:
                                flt_opts = dict((a, b) for a, b in opts.items() if not a.startswith("test."))
                                key = name + (str(flt_opts) if flt_opts else "")
                                current.append((key, flt_opts, opts))
                        continue
                    if m.group(1) == "addFILE":
                        filenames.append(data)
                        continue
                    faildata = data
                    if k >= len(lines):
                        break
                    line = lines[k]
                    k += 1
                elif ignore_block or line.startswith("#") or not line.strip():
                    continue
                else:
                    faildata = {}
                if ignore_block:
                    continue
                if not current:
                    current = [(name, {}, {})]
                line = line.rstrip("\r\n")
                for key, flt_opts, opts in current:
                    if faildata.get("constraint") and not eval(faildata["constraint"]):
                        continue
                    if key not in variants:
                        variants[key] = (name, flt_opts, [])
                        order.append(key)
                    text = line
                    journal = opts.get("logtype") == "journal"
                    if journal and opts.get("test.prefix-line"):
                        text = opts.get("test.prefix-line") + text
                    variants[key][2].append((text, journal))
    return [(key,) + variants[key] for key in order]


def new_filter(d, check_all, raw, usedns):
    flt = Filter(None, useDns=usedns)
    flt.returnRawHost = raw
    flt.checkAllRegex = check_all
    flt.checkFindTime = False
    flt.active = True
    if d["maxlines"] > 1:
        flt.setMaxLines(d["maxlines"])
    if d["datepattern"] is not None:
        flt.setDatePattern(d["datepattern"])
    if d["prefregex"]:
        flt.prefRegex = d["prefregex"]
    for r in d["failregex"]:
        flt.addFailRegex(r)
    for r in d["ignoreregex"]:
        flt.addIgnoreRegex(r)
    return flt


def split_date(flt, line, journal):
    """The line cut as Fail2ban cuts it: (time text, text without it, time)."""
    if journal:
        return NOW_STR, line, float(NOW)
    tm = flt.dateDetector.matchTime(line)
    m = tm[0]
    if m and m.end(1) > m.start(1):
        s, e = m.start(1), m.end(1)
        d = flt.dateDetector.getTime(line[s:e], tm)
        if d is not None:
            return line[s:e], line[:s] + line[e:], d[0]
    return "", line, float(NOW)


def fail_json(found):
    out = []
    for idx, fid, date, fail in found:
        out.append({
            "regex": idx,
            "fid": None if fid is None else str(fid),
            "nofail": bool(fail.get("nofail")),
            "matches": ["".join(m) if isinstance(m, (tuple, list)) else m for m in fail.get("matches", [])],
            "users": sorted(fail.get("users") or []),
            "ip": None if fail.get("ip") is None else str(fail.get("ip")),
            "data": dict((k, v) for k, v in fail.items() if isinstance(v, str)),
        })
    return out


def corpus(check_all, raw, usedns):
    MyTime.setTime(NOW)
    result = []
    for key, name, flt_opts, lines in corpus_variants():
        d = read_filter(name, flt_opts)
        flt = new_filter(d, check_all, raw, usedns)
        ignored = []
        flt.onIgnoreRegex = lambda idx, r: ignored.append(idx)
        out_lines = []
        for text, journal in lines:
            time_text, rest, t = split_date(flt, text, journal)
            del ignored[:]
            found = flt.processLine(("", time_text, rest), t)
            pre = flt.prefRegex
            out_lines.append({
                "time_text": time_text, "text": rest, "time": t,
                "failures": fail_json(found),
                "ignored": list(ignored),
                "pref": bool(pre and pre.hasMatched()),
                "buffer": ["".join(b) for b in flt._Filter__lineBuffer],
            })
        result.append({"key": key, "def": d, "lines": out_lines})
    json.dump(result, sys.stdout)


def report():
    from fail2ban.client.fail2banregex import Fail2banRegex, get_opt_parser
    MyTime.setTime(NOW)
    result = []
    for key, name, flt_opts, lines in corpus_variants():
        d = read_filter(name, flt_opts)
        arg = name
        if flt_opts:
            arg += "[" + ", ".join("%s=%s" % (k, json.dumps(v)) for k, v in flt_opts.items()) + "]"
        opts, _ = get_opt_parser().parse_args(["--usedns", "no", "--print-all-matched", "--print-all-missed", "-c", CONFIG_DIR, "x", arg])
        with contextlib.redirect_stdout(io.StringIO()):
            f2br = Fail2banRegex(opts)
            assert f2br.readRegex(arg, "fail"), arg
        flt = f2br._filter
        tuples = []
        for text, journal in lines:
            time_text, rest, t = split_date(flt, text, journal)
            tuples.append((("", time_text, rest), t))
        with contextlib.redirect_stdout(io.StringIO()):
            f2br.process(tuples)
        st = f2br._line_stats
        result.append({
            "key": key, "def": d,
            "lines": [{"time_text": a[1], "text": a[2], "time": t} for a, t in tuples],
            "tested": st.tested, "ignored": st.ignored, "matched": st.matched, "missed": st.missed,
            "prefregex": f2br._prefREMatched,
            "failregex": [r.getStats() for r in f2br._failregex],
            "ignoreregex": [r.getStats() for r in f2br._ignoreregex],
            "matched_lines": st.matched_lines, "missed_lines": st.missed_lines,
        })
    json.dump(result, sys.stdout)


def search():
    out = []
    for case in json.load(sys.stdin):
        regex, usedns, subject = case[:3]
        try:
            r = Regex(regex, useDns=usedns, multiline=len(case) > 3 and case[3])
        except RegexException as e:
            out.append({"error": str(e)})
            continue
        m = r._regexObj.search(subject)
        out.append(None if not m else {"span": [m.start(), m.end()], "groups": m.groupdict()})
    json.dump(out, sys.stdout)


def classes():
    import unicodedata
    out = {}
    for name in (r"\s", r"\w", r"\d"):
        rx = re.compile(name)
        out[name] = [c for c in range(0x110000) if not 0xd800 <= c < 0xe000 and rx.match(chr(c))]
    out["unassigned"] = [c for c in range(0x110000) if unicodedata.category(chr(c)) == "Cn"]
    json.dump(out, sys.stdout)


def decode():
    out = []
    for hexbytes in json.load(sys.stdin):
        out.append(bytes.fromhex(hexbytes).decode("utf-8", "replace"))
    json.dump(out, sys.stdout)


def pton():
    out = []
    for text in json.load(sys.stdin):
        r = None
        for fam, nm in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
            try:
                b = socket.inet_pton(fam, text)
                r = [nm, socket.inet_ntop(fam, b)]
                break
            except (OSError, ValueError):
                pass
        out.append(r)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "filters":
        variants = [(name, {}) for name in stock_filters()]
        variants += [(name, o) for key, name, o, lines in corpus_variants() if o]
        json.dump([read_filter(name, o) for name, o in variants], sys.stdout)
    elif cmd == "corpus":
        corpus(sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4])
    elif cmd == "report":
        report()
    elif cmd == "search":
        search()
    elif cmd == "classes":
        classes()
    elif cmd == "pton":
        pton()
    elif cmd == "decode":
        decode()
    else:
        sys.exit("unknown command " + cmd)
