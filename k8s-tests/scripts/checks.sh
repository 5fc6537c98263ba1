# What the check scripts (smoke-test.sh, check-skaffold.sh) share, sourced: one "ok"/"FAIL" line
# per check, the output of a failed one indented below it, and the count at the end.
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $*"; }
ko() { fail=$((fail + 1)); echo "FAIL - $*"; }
indent() { while IFS= read -r l; do printf '       %s\n' "$l"; done <<<"$1"; }
check() { # description command...
  local d="$1" out; shift
  if out="$("$@" 2>&1)"; then ok "$d"; else ko "$d"; indent "$out"; fi
}
check_fails() { # description pattern command...: command must fail with pattern in its output
  local d="$1" pat="$2" out; shift 2
  if out="$("$@" 2>&1)"; then ko "$d (succeeded)"; indent "$out"
  elif grep -qE -- "$pat" <<<"$out"; then ok "$d"
  else ko "$d (wrong error)"; indent "$out"; fi
}
# "N passed, N failed"; the status is the verdict.
summary() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
