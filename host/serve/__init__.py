"""Serverless functions: ``Host.function`` and ``kindling serve``.

::

    spec.py      FunctionSpec: the [[function]] keys (TOML, control API, Host.function)
    function.py  Function.invoke: the gate, command mode (CGI) and export mode (pool)
    cgi.py       WAGI/CGI 1.1: request -> environ/argv; output -> status, headers, body
    numbers.py   export mode's JSON arrays of numbers
    pool.py      export mode's warm guests
    gate.py      concurrency limit and queue (429 beyond)
    report.py    Response and Report (one JSON log line per invocation)
"""

from .function import ENDING_HEADER, Function
from .gate import Throttled
from .report import Report, Response
from .spec import FunctionSpec, Mode, PoolSpec, ServeConfig, load_serve_config

__all__ = [
    "ENDING_HEADER",
    "Function",
    "FunctionSpec",
    "Mode",
    "PoolSpec",
    "Report",
    "Response",
    "ServeConfig",
    "Throttled",
    "load_serve_config",
]
