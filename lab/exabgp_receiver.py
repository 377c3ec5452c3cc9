"""ExaBGP API process: append every JSON line ExaBGP writes to stdin to the file in argv[1].

Flushes after each line so readers see messages as they arrive; exits when
ExaBGP closes the pipe.
"""

from __future__ import annotations

import sys


def main() -> int:
    with open(sys.argv[1], "a", encoding="utf-8") as out:
        for line in sys.stdin:
            out.write(line if line.endswith("\n") else line + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
