# agentic-sandbox code-context driver (Python). Embedded in the addon; passed with `python3 -c`.
# Protocol (src/service/contexts.rs): one JSON request per line on the original stdin
# {"nonce", "code", "max"}; the cell's own output goes to the real fds 1 and 2; at the end of a
# cell the marker \x1e<nonce>\x1e goes to the original stderr, then the marker and one JSON line
# {"results": [...], "error": {...} | null} to the original stdout.
def _agentic_sandbox_driver():
    import ast, base64, builtins, json, linecache, os, signal, sys, traceback
    req_fd, out_fd, err_fd = os.dup(0), os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.environ.setdefault("MPLBACKEND", "Agg")
    requests = os.fdopen(req_fd, "rb", buffering=1 << 16)
    ns = {"__name__": "__main__", "__builtins__": builtins}
    state = {"running": False, "outputs": None, "max": 1 << 24, "shown": set()}

    def on_sigint(signum, frame):
        if state["running"]:
            raise KeyboardInterrupt
    signal.signal(signal.SIGINT, on_sigint)

    def write_all(fd, data):
        while data:
            n = os.write(fd, data)
            data = data[n:]

    def bundle(obj):
        """The representations of obj, as Jupyter would show it."""
        cap = state["max"]
        out = {}
        try:
            text = repr(obj)
        except BaseException as e:
            text = "<repr failed: %s>" % type(e).__name__
        if len(text) > cap:
            text = text[:cap] + "... (truncated)"
        out["text"] = text
        if obj is None or isinstance(obj, (bool, int, float, str, list, dict, tuple)):
            try:
                j = json.dumps(obj, allow_nan=False)
                if len(j) <= cap:
                    out["json"] = obj
            except Exception:
                pass
        mpl = sys.modules.get("matplotlib.figure")
        if mpl is not None and isinstance(obj, mpl.Figure):
            png = figure_png(obj)
            if png:
                out["png"] = png
            state["shown"].add(id(obj))
        for attr, key, binary in (("_repr_html_", "html", False), ("_repr_markdown_", "markdown", False),
                                  ("_repr_svg_", "svg", False), ("_repr_png_", "png", True),
                                  ("_repr_jpeg_", "jpeg", True), ("_repr_json_", "json", False)):
            if key in out and key != "json":
                continue
            f = getattr(type(obj), attr, None)
            if f is None:
                continue
            try:
                v = f(obj)
            except Exception:
                continue
            if isinstance(v, tuple):
                v = v[0]
            if v is None:
                continue
            if binary:
                if isinstance(v, str):
                    v = v.encode("latin-1", "replace")
                v = base64.b64encode(v).decode("ascii")
            elif key == "json":
                try:
                    if len(json.dumps(v)) > cap:
                        continue
                except Exception:
                    continue
            elif not isinstance(v, str):
                continue
            if len(v) <= cap:
                out[key] = v
        return out

    def figure_png(fig):
        import io
        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="png", bbox_inches="tight")
        except Exception:
            return None
        return base64.b64encode(buf.getvalue()).decode("ascii")

    def display(*objs):
        """Show objects as rich outputs of the current cell (results with isMainResult false)."""
        for obj in objs:
            if state["outputs"] is not None:
                r = bundle(obj)
                r["isMainResult"] = False
                state["outputs"].append(r)
    builtins.display = display

    def open_figures():
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return
        try:
            for num in plt.get_fignums():
                fig = plt.figure(num)
                if id(fig) not in state["shown"]:
                    png = figure_png(fig)
                    if png:
                        state["outputs"].append({"text": repr(fig), "png": png, "isMainResult": False})
            plt.close("all")
        except Exception:
            pass

    def run(code, filename):
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        tree = ast.parse(code, filename, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        flags = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
        co = compile(tree, filename, "exec", flags=flags)
        r = eval(co, ns)
        if co.co_flags & 0x80:
            import asyncio
            asyncio.run(r)
        if last is None:
            return None
        co = compile(last, filename, "eval", flags=flags)
        v = eval(co, ns)
        if co.co_flags & 0x80:
            import asyncio
            v = asyncio.run(v)
        return v

    cell = 0
    while True:
        try:
            line = requests.readline()
        except KeyboardInterrupt:
            continue
        if not line:
            os._exit(0)
        try:
            req = json.loads(line)
            nonce = req["nonce"].encode("ascii")
        except Exception:
            write_all(err_fd, b"agentic-sandbox driver: bad request\n")
            os._exit(3)
        cell += 1
        state["max"] = int(req.get("max") or (1 << 24))
        state["outputs"] = []
        state["shown"] = set()
        error = None
        main = None
        # what an earlier cell closed or redirected is back (the protocol never depended on it)
        for fd, orig in ((1, out_fd), (2, err_fd)):
            try:
                os.fstat(fd)
            except OSError:
                os.dup2(orig, fd)
        try:
            state["running"] = True
            try:
                value = run(req["code"], "<cell-%d>" % cell)
                if value is not None:
                    main = value
            finally:
                state["running"] = False
        except BaseException as e:
            state["running"] = False
            # the driver's own frames (run, eval, the SIGINT handler) are not the user's
            try:
                frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename != "<string>"]
                text = "".join(["Traceback (most recent call last):\n"] if frames else [])
                text += "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(e), e))
            except BaseException:
                text = ""
            try:
                value = str(e)
            except BaseException:
                value = "<str failed>"
            error = {"name": type(e).__name__, "value": value, "traceback": text[-state["max"]:]}
        try:
            results = []
            if main is not None:
                r = bundle(main)
                r["isMainResult"] = True
                results.append(r)
            open_figures()
            results = state["outputs"] + results
            for f in (sys.stdout, sys.stderr):
                try:
                    f.flush()
                except BaseException:
                    pass
            body = json.dumps({"results": results, "error": error}).encode()
            if len(body) > state["max"]:
                body = json.dumps({"results": [], "error": {"name": "ResultTooLarge", "value": "the cell's results are %d bytes, over the %d-byte limit" % (len(body), state["max"]), "traceback": ""}}).encode()
        except BaseException as e:
            body = json.dumps({"results": [], "error": {"name": type(e).__name__, "value": "could not report the cell's results", "traceback": ""}}).encode()
        state["outputs"] = None
        marker = b"\x1e" + nonce + b"\x1e"
        write_all(err_fd, marker)
        write_all(out_fd, marker + body + b"\n")

_agentic_sandbox_driver()
