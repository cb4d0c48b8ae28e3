#!/usr/bin/env bash
# Regenerate src/service/testparse/fixtures/<framework>-<case>.txt from the REAL test runners.
#
# The fixtures are committed and are what src/service/testparse.rs's unit tests parse, so they must be what
# jest, vitest, pytest and `go test` really print, not hand-written approximations. This script writes
# small projects for each framework, runs them inside agentic-sandbox/devtools:2 (built offline by
# scripts/build-images.sh) under the sandbox's default hardening (read-only root, noexec /tmp, no
# capabilities, user 1000, no network), and stores stdout, a newline, then stderr: exactly how the
# sandbox hands a command's output to testparse::parse.
#
# Cases per framework:
#   mixed       passing, failing (with messages), skipped tests, nested describe/class/subtest names
#   pass        everything passes
#   load-error  a test file or package that fails to compile/import next to a passing one
#
# The commands below mirror testparse::default_command (keep them in step). Timings in the output
# differ run to run; the unit tests assert counts, names and messages only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
"$here/build-images.sh"

IMAGE=${DEVTOOLS_TAG:-agentic-sandbox/devtools:2}
out_dir="$repo/src/service/testparse/fixtures"
mkdir -p "$out_dir"

work=$(mktemp -d)
vol="agentic-sandbox-fixtures-$$"
cleanup() { docker volume rm -f "$vol" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# jest
p="$work/jest-mixed"; mkdir -p "$p"
cat >"$p/package.json" <<'EOF'
{ "name": "jest-mixed", "private": true, "scripts": { "test": "jest" } }
EOF
cat >"$p/math.js" <<'EOF'
exports.add = (a, b) => a + b;
exports.div = (a, b) => {
  if (b === 0) throw new Error('division by zero');
  return a / b;
};
EOF
cat >"$p/math.test.js" <<'EOF'
const { add, div } = require('./math');

describe('calculator', () => {
  describe('add', () => {
    test('adds positives', () => {
      expect(add(1, 2)).toBe(3);
    });
    test('adds negatives', () => {
      expect(add(-1, -2)).toBe(-4);
    });
    test.skip('adds strings', () => {
      expect(add('a', 'b')).toBe('ab');
    });
  });
  describe('div', () => {
    test('divides', () => {
      expect(div(6, 3)).toBe(2);
    });
    test('divides by zero', () => {
      expect(div(1, 0)).toBe(Infinity);
    });
    test.todo('rounds');
  });
});

test('objects are equal', () => {
  expect({ a: 1, b: [1, 2] }).toEqual({ a: 1, b: [1, 3] });
});
EOF
cat >"$p/strings.test.js" <<'EOF'
describe('strings', () => {
  it('upper-cases', () => {
    expect('a'.toUpperCase()).toBe('A');
  });
  it.skip('lower-cases', () => {
    expect('A'.toLowerCase()).toBe('a');
  });
});
EOF

p="$work/jest-pass"; mkdir -p "$p"
cat >"$p/package.json" <<'EOF'
{ "name": "jest-pass", "private": true, "scripts": { "test": "jest" } }
EOF
cat >"$p/sum.test.js" <<'EOF'
describe('sum', () => {
  describe('integers', () => {
    test('one plus one', () => expect(1 + 1).toBe(2));
    test('two plus two', () => expect(2 + 2).toBe(4));
  });
  test('floats', () => expect(0.1 + 0.2).toBeCloseTo(0.3));
});
EOF
cat >"$p/list.test.js" <<'EOF'
test('contains', () => expect([1, 2, 3]).toContain(2));
EOF

p="$work/jest-load-error"; mkdir -p "$p"
cat >"$p/package.json" <<'EOF'
{ "name": "jest-load-error", "private": true, "scripts": { "test": "jest" } }
EOF
cat >"$p/ok.test.js" <<'EOF'
test('still runs', () => expect(true).toBe(true));
EOF
cat >"$p/syntax.test.js" <<'EOF'
describe('broken', () => {
  test('never runs', () => {
    expect(1).toBe(1);
  ;
});
EOF
cat >"$p/missing.test.js" <<'EOF'
const helper = require('./does-not-exist');
test('never runs either', () => expect(helper).toBeDefined());
EOF

# ---------------------------------------------------------------------------------------------
# vitest
p="$work/vitest-mixed"; mkdir -p "$p"
cat >"$p/package.json" <<'EOF'
{ "name": "vitest-mixed", "private": true, "type": "module", "scripts": { "test": "vitest run" } }
EOF
cat >"$p/math.js" <<'EOF'
export const add = (a, b) => a + b;
export const div = (a, b) => {
  if (b === 0) throw new Error('division by zero');
  return a / b;
};
EOF
cat >"$p/math.test.js" <<'EOF'
import { describe, it, test, expect } from 'vitest';
import { add, div } from './math.js';

describe('calculator', () => {
  describe('add', () => {
    it('adds positives', () => {
      expect(add(1, 2)).toBe(3);
    });
    it('adds negatives', () => {
      expect(add(-1, -2), 'sum of negatives').toBe(-4);
    });
    it.skip('adds strings', () => {
      expect(add('a', 'b')).toBe('ab');
    });
  });
  describe('div', () => {
    it('divides', () => {
      expect(div(6, 3)).toBe(2);
    });
    it('divides by zero', () => {
      expect(div(1, 0)).toBe(Infinity);
    });
    it.todo('rounds');
  });
});

test('objects are equal', () => {
  expect({ a: 1, b: [1, 2] }).toEqual({ a: 1, b: [1, 3] });
});
EOF
cat >"$p/strings.test.ts" <<'EOF'
import { describe, it, expect } from 'vitest';

describe('strings', () => {
  it('upper-cases', () => {
    const s: string = 'a';
    expect(s.toUpperCase()).toBe('A');
  });
  it.skip('lower-cases', () => {
    expect('A'.toLowerCase()).toBe('a');
  });
});
EOF

p="$work/vitest-pass"; mkdir -p "$p"
cat >"$p/package.json" <<'EOF'
{ "name": "vitest-pass", "private": true, "type": "module", "scripts": { "test": "vitest run" } }
EOF
cat >"$p/sum.test.js" <<'EOF'
import { describe, test, expect } from 'vitest';

describe('sum', () => {
  describe('integers', () => {
    test('one plus one', () => expect(1 + 1).toBe(2));
    test('two plus two', () => expect(2 + 2).toBe(4));
  });
  test('floats', () => expect(0.1 + 0.2).toBeCloseTo(0.3));
});
EOF
cat >"$p/list.test.ts" <<'EOF'
import { test, expect } from 'vitest';

test('contains', () => expect([1, 2, 3] as number[]).toContain(2));
EOF

p="$work/vitest-load-error"; mkdir -p "$p"
cat >"$p/package.json" <<'EOF'
{ "name": "vitest-load-error", "private": true, "type": "module", "scripts": { "test": "vitest run" } }
EOF
cat >"$p/ok.test.js" <<'EOF'
import { test, expect } from 'vitest';

test('still runs', () => expect(true).toBe(true));
EOF
cat >"$p/syntax.test.js" <<'EOF'
import { describe, test, expect } from 'vitest';

describe('broken', () => {
  test('never runs', () => {
    expect(1).toBe(1);
  ;
});
EOF
cat >"$p/missing.test.js" <<'EOF'
import { test, expect } from 'vitest';
import helper from './does-not-exist.js';

test('never runs either', () => expect(helper).toBeDefined());
EOF

# ---------------------------------------------------------------------------------------------
# pytest
p="$work/pytest-mixed"; mkdir -p "$p/tests"
cat >"$p/pyproject.toml" <<'EOF'
[project]
name = "pytest-mixed"
version = "0.0.0"
EOF
cat >"$p/tests/test_calc.py" <<'EOF'
import pytest


def add(a, b):
    return a + b


def test_add():
    assert add(1, 2) == 3


def test_add_negative():
    result = add(-1, -2)
    assert result == -4, "sum of negatives should be -4"


@pytest.mark.skip(reason="not implemented yet")
def test_add_strings():
    assert add("a", "b") == "ab"


@pytest.mark.parametrize("a,b,expected", [(1, 1, 2), (2, 2, 5)])
def test_param(a, b, expected):
    assert add(a, b) == expected


class TestOuter:
    def test_ok(self):
        assert add(0, 0) == 0

    class TestInner:
        def test_nested_fail(self):
            assert [1, 2, 3] == [1, 2, 4]

        def test_nested_skip(self):
            pytest.skip("inner skip")


@pytest.fixture
def broken_fixture():
    raise RuntimeError("fixture exploded")


def test_uses_broken_fixture(broken_fixture):
    assert broken_fixture


@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert add(1, 1) == 3


def test_raises():
    {}["missing"]
EOF
cat >"$p/tests/test_other.py" <<'EOF'
def test_other():
    assert "abc".upper() == "ABC"
EOF

p="$work/pytest-pass"; mkdir -p "$p"
cat >"$p/test_sum.py" <<'EOF'
import pytest


def test_one_plus_one():
    assert 1 + 1 == 2


class TestFloats:
    def test_close(self):
        assert 0.1 + 0.2 == pytest.approx(0.3)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_positive(n):
    assert n > 0
EOF

p="$work/pytest-load-error"; mkdir -p "$p/tests"
cat >"$p/conftest.py" <<'EOF'
EOF
cat >"$p/tests/test_ok.py" <<'EOF'
def test_still_collected():
    assert True
EOF
cat >"$p/tests/test_missing.py" <<'EOF'
import does_not_exist


def test_never_runs():
    assert does_not_exist
EOF
cat >"$p/tests/test_syntax.py" <<'EOF'
def test_never_runs_either(:
    assert True
EOF

# ---------------------------------------------------------------------------------------------
# go
p="$work/go-mixed"; mkdir -p "$p/calc" "$p/strs" "$p/util"
printf 'module example.com/gomixed\n\ngo 1.19\n' >"$p/go.mod"
cat >"$p/calc/calc.go" <<'EOF'
package calc

func Add(a, b int) int { return a + b }

// Sub has a bug on purpose.
func Sub(a, b int) int { return a + b }
EOF
cat >"$p/calc/calc_test.go" <<'EOF'
package calc

import "testing"

func TestAdd(t *testing.T) {
	if Add(1, 2) != 3 {
		t.Fatal("1 + 2 is not 3")
	}
}

func TestSub(t *testing.T) {
	if got := Sub(5, 3); got != 2 {
		t.Errorf("Sub(5, 3) = %d, want %d", got, 2)
	}
}

func TestSkipped(t *testing.T) {
	t.Skip("not ready yet")
}

func TestTable(t *testing.T) {
	cases := []struct {
		name       string
		a, b, want int
	}{
		{"small", 1, 1, 2},
		{"large numbers", 100, 200, 301},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			if got := Add(c.a, c.b); got != c.want {
				t.Errorf("Add(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
			}
		})
	}
}

func TestNested(t *testing.T) {
	t.Run("outer", func(t *testing.T) {
		t.Run("inner ok", func(t *testing.T) {})
		t.Run("inner skip", func(t *testing.T) { t.Skip("skip inner") })
	})
}

func TestParallel(t *testing.T) {
	t.Run("p1", func(t *testing.T) {
		t.Parallel()
		t.Log("a log line")
	})
	t.Run("p2", func(t *testing.T) {
		t.Parallel()
		t.Error("parallel failure")
	})
}
EOF
cat >"$p/strs/strs.go" <<'EOF'
package strs

import "strings"

func Upper(s string) string { return strings.ToUpper(s) }
EOF
cat >"$p/strs/strs_test.go" <<'EOF'
package strs

import "testing"

func TestUpper(t *testing.T) {
	if Upper("a") != "A" {
		t.Fatal("bad")
	}
}
EOF
cat >"$p/util/util.go" <<'EOF'
package util

func Noop() {}
EOF

p="$work/go-pass"; mkdir -p "$p"
printf 'module example.com/gopass\n\ngo 1.19\n' >"$p/go.mod"
cat >"$p/sum.go" <<'EOF'
package gopass

func Sum(xs ...int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}
EOF
cat >"$p/sum_test.go" <<'EOF'
package gopass

import "testing"

func TestSum(t *testing.T) {
	if Sum(1, 2, 3) != 6 {
		t.Fatal("bad sum")
	}
}

func TestSumCases(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		if Sum() != 0 {
			t.Fatal("bad empty")
		}
	})
	t.Run("one", func(t *testing.T) {
		if Sum(4) != 4 {
			t.Fatal("bad one")
		}
	})
}
EOF

p="$work/go-load-error"; mkdir -p "$p/ok" "$p/broken" "$p/badtest"
printf 'module example.com/goload\n\ngo 1.19\n' >"$p/go.mod"
cat >"$p/ok/ok.go" <<'EOF'
package ok

func One() int { return 1 }
EOF
cat >"$p/ok/ok_test.go" <<'EOF'
package ok

import "testing"

func TestOne(t *testing.T) {
	if One() != 1 {
		t.Fatal("bad")
	}
}
EOF
cat >"$p/broken/broken.go" <<'EOF'
package broken

func Two() int { return "two" }
EOF
cat >"$p/broken/broken_test.go" <<'EOF'
package broken

import "testing"

func TestTwo(t *testing.T) {
	if Two() != 2 {
		t.Fatal("bad")
	}
}
EOF
cat >"$p/badtest/badtest.go" <<'EOF'
package badtest

func Three() int { return 3 }
EOF
cat >"$p/badtest/badtest_test.go" <<'EOF'
package badtest

import "testing"

func TestThree(t *testing.T) {
	if Three() != undefinedThing {
		t.Fatal("bad")
	}
}
EOF

# ---------------------------------------------------------------------------------------------
# The commands, as in testparse::default_command.
cmd_jest='PATH="$PWD/node_modules/.bin:$PATH"
for f in package.json jest.config.js jest.config.ts jest.config.mjs jest.config.cjs jest.config.json; do
  [ -e "$f" ] && exec jest
done
exec jest --config "{}"'
cmd_vitest='PATH="$PWD/node_modules/.bin:$PATH" exec vitest run'
cmd_pytest='PATH="$PWD/.venv/bin:$PWD/venv/bin:$PATH"
if command -v pytest >/dev/null 2>&1; then exec pytest -v; fi
exec python3 -m pytest -v'
cmd_go='w() { mkdir -p "$1" 2>/dev/null && [ -w "$1" ]; }
w "$(go env GOCACHE)" || export GOCACHE=/tmp/go-cache
w "$(go env GOPATH | cut -d: -f1)" || export GOPATH=/tmp/go
t=
if [ -z "${GOTMPDIR:-}" ] && mkdir -p .agentic-sandbox/tmp 2>/dev/null && t=$(mktemp -d "$PWD/.agentic-sandbox/tmp/go.XXXXXX"); then
  export GOTMPDIR="$t"
fi
go test -v ./...
rc=$?
if [ -n "$t" ]; then rm -rf "$t"; rmdir .agentic-sandbox/tmp .agentic-sandbox 2>/dev/null; fi
exit $rc'

# A root container chowns the volume to the sandbox user. It must leave something behind: the
# engine copies the image's /workspace (root-owned) over an EMPTY volume on every mount.
docker volume create "$vol" >/dev/null
docker run --rm --network none -v "$vol:/workspace" "$IMAGE" \
  sh -c 'touch /workspace/.keep && chown -R 1000:1000 /workspace'
hardened=(docker run --rm -i --read-only --tmpfs /tmp:rw,noexec,nosuid --cap-drop ALL
  --security-opt no-new-privileges --user 1000:1000 --network none -v "$vol:/workspace" -w /workspace
  -e CI=1 -e NO_COLOR=1 -e FORCE_COLOR=0)
tar -C "$work" --owner=1000 --group=1000 -c . | "${hardened[@]}" "$IMAGE" tar -x --no-same-owner

for fw in jest vitest pytest go; do
  var="cmd_$fw"
  for case in mixed pass load-error; do
    name="$fw-$case"
    set +e
    "${hardened[@]}" -w "/workspace/$name" "$IMAGE" sh -c "${!var}" >"$work/$name.out" 2>"$work/$name.err"
    rc=$?
    set -e
    { cat "$work/$name.out"; printf '\n'; cat "$work/$name.err"; } >"$out_dir/$name.txt"
    echo "[capture-test-fixtures] $name.txt (exit $rc)" >&2
  done
done
