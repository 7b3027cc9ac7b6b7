"""Shared helpers for the Python `kubernetes` client end-to-end scripts.

Each script takes the kubeconfig path as its first argument, raises (non-zero exit, traceback
on stderr) when a check fails, and prints one JSON summary line on stdout when it passes.
"""

import json
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def api_client(kubeconfig):
    """A fresh ApiClient for the given kubeconfig (no global configuration)."""
    return config.new_client_from_config(config_file=kubeconfig)


def check(cond, what, **context):
    if not cond:
        raise AssertionError(f"{what}: {json.dumps(context, default=str, sort_keys=True)}")


def expect_status(code, fn, *args, **kwargs):
    """Calls fn and asserts it fails with ApiException `code`; returns the exception."""
    try:
        got = fn(*args, **kwargs)
    except ApiException as e:
        check(e.status == code, f"{fn.__name__} should fail with {code}", status=e.status, body=e.body)
        return e
    raise AssertionError(f"{fn.__name__} should fail with {code} but returned {got}")


def eventually(what, fn, timeout=30.0, interval=0.1):
    """Polls fn until it returns a truthy value; raises naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def create_namespace(core, name):
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def emit(summary):
    print(json.dumps(summary, sort_keys=True), flush=True)


def log(msg):
    print(msg, file=sys.stderr, flush=True)
