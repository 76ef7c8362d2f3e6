"""The soak's sanitizer check sees a report wherever a daemon's log has one.

fixtures/sanitizer-reports.log is the log of one node over two incarnations:
a UBSan report printed while the first ran (it was then killed and restarted)
and a LeakSanitizer report printed by the second as it exited on SIGTERM.
fixtures/clean.log is the same log without them.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOAK = os.path.join(HERE, "soak.py")


def scan(*logs):
    p = subprocess.run([sys.executable, SOAK, "--scan-log",
                        *(os.path.join(HERE, "fixtures", log) for log in logs)],
                       capture_output=True, text=True)
    return p.returncode, json.loads(p.stdout)


def test_reports_from_a_killed_incarnation_and_at_exit_fail_the_soak():
    code, out = scan("clean.log", "sanitizer-reports.log")
    assert code == 1
    assert out["logs_scanned"] == 2
    assert out["sanitizer_reports"] == 2
    assert any("runtime error:" in r for r in out["reports"])
    assert any("ERROR: LeakSanitizer" in r for r in out["reports"])


def test_a_clean_log_passes():
    assert scan("clean.log") == (0, {"logs_scanned": 1, "sanitizer_reports": 0, "reports": []})
