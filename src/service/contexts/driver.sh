# agentic-sandbox code-context driver (bash). Embedded in the addon; passed with `bash -c`.
# The launcher moved the protocol off the user's fds: requests arrive on fd 3 (a line with the
# cell's nonce, the code, then a line with the nonce again), fd 0 is /dev/null, fds 4 and 5 are the
# original stdout and stderr. At the end of a cell the marker \x1e<nonce>\x1e goes to fd 5, then
# the marker and one JSON line {"exitCode": N} to fd 4. The cell runs with `eval` in this shell,
# so its variables, functions, cwd and options persist.
__agentic_sandbox_interrupted=0
trap '__agentic_sandbox_interrupted=1' INT
while :; do
  IFS= read -r __agentic_sandbox_nonce <&3 || exit 0
  __agentic_sandbox_code=
  while IFS= read -r __agentic_sandbox_line <&3; do
    [ "$__agentic_sandbox_line" = "$__agentic_sandbox_nonce" ] && break
    __agentic_sandbox_code+="$__agentic_sandbox_line"$'\n'
  done
  __agentic_sandbox_interrupted=0
  eval "$__agentic_sandbox_code"
  __agentic_sandbox_rc=$?
  [ "$__agentic_sandbox_interrupted" = 1 ] && [ "$__agentic_sandbox_rc" = 0 ] && __agentic_sandbox_rc=130
  printf '\036%s\036' "$__agentic_sandbox_nonce" >&5
  __agentic_sandbox_i=false
  [ "$__agentic_sandbox_interrupted" = 1 ] && __agentic_sandbox_i=true
  printf '\036%s\036{"exitCode":%d,"interrupted":%s}\n' "$__agentic_sandbox_nonce" "$__agentic_sandbox_rc" "$__agentic_sandbox_i" >&4
done
