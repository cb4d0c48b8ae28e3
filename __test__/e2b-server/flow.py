# The core flow of the official E2B Python SDK against `agentic-sandbox serve` (run by
# __test__/e2b-server.spec.ts with E2B_API_KEY, E2B_API_URL and E2B_SANDBOX_URL set to the server).
# Prints one JSON object with what it saw; any exception fails the test with its traceback.
import json

from e2b import CommandExitException, NotFoundException, Sandbox, SandboxQuery

out = {}
sbx = Sandbox.create(metadata={"suite": "e2b-server-py"}, envs={"GREETING": "hi from python"}, timeout=120)
try:
    out["id"] = sbx.sandbox_id
    streamed = []
    r = sbx.commands.run('echo "$GREETING"; echo err >&2', on_stdout=lambda s: streamed.append(s))
    out["run"] = {"stdout": r.stdout, "stderr": r.stderr, "exit_code": r.exit_code, "streamed": "".join(streamed)}
    try:
        sbx.commands.run("exit 7")
        out["exit"] = "no exception"
    except CommandExitException as e:
        out["exit"] = e.exit_code
    sbx.files.write("py/hello.txt", "written by python")
    out["read"] = sbx.files.read("py/hello.txt")
    out["list"] = sorted(e.name for e in sbx.files.list("py"))
    out["listed"] = [s.sandbox_id for s in Sandbox.list(query=SandboxQuery(metadata={"suite": "e2b-server-py"})).next_items()]
    sbx.set_timeout(60)
    out["info_state"] = sbx.get_info().state
finally:
    out["killed"] = sbx.kill()
try:
    Sandbox.connect(out["id"])
    out["after_kill"] = "still there"
except NotFoundException:
    out["after_kill"] = "not found"
except Exception as e:  # the SDK's class for it differs between versions; say which
    out["after_kill"] = type(e).__name__
print(json.dumps(out))
