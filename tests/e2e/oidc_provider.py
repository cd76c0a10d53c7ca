"""The real OpenID provider of the SSO tests: tests/e2e/idp/provider.mjs, a Node process.

`make install` puts its node_modules in place (`npm ci --prefix tests/e2e/idp`).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

IDP_DIR = Path(__file__).resolve().parent / "idp"
CLIENT_ID = "llm-academy-tests"
CLIENT_SECRET = "test-only-client-secret"
# The accounts of provider.mjs.
NADIA = ("nadia", "nadia-sso-password")
NOBODY = ("nobody", "nobody-sso-password")


@dataclass
class OpenIDProvider:
    issuer: str
    process: subprocess.Popen[bytes]
    log: list[str] = field(default_factory=list)

    def set_fault(self, fault: str) -> None:
        """tamper, wrong-audience, expired: the next token response carries a bad ID token;
        down: the provider exits when the next code is to be exchanged."""
        response = requests.post(f"{self.issuer}/__test__/fault", data={"fault": fault}, timeout=5)
        assert response.status_code == 204

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def provider_start(*, rp_url: str) -> OpenIDProvider:
    """Start a provider on a port the kernel picks, for the relying party at `rp_url`."""
    node = shutil.which("node")
    if node is None or not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("The test OpenID provider is not installed: run `make install` (Node and npm).")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "IDP_CLIENT_ID": CLIENT_ID,
        "IDP_CLIENT_SECRET": CLIENT_SECRET,
        "IDP_REDIRECT_URI": f"{rp_url}/oidc/callback/",
        "IDP_POST_LOGOUT_REDIRECT_URI": f"{rp_url}/accounts/login/",
    }
    process = subprocess.Popen(
        [node, "provider.mjs"],
        cwd=IDP_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=30):
        process.kill()
        pytest.fail("The test OpenID provider did not start within 30 s.")
    line = process.stdout.readline().decode()
    if not line:
        pytest.fail(f"The test OpenID provider exited at start (status {process.wait()}).")
    provider = OpenIDProvider(issuer=json.loads(line)["issuer"], process=process)
    deadline = time.monotonic() + 15
    while True:
        try:
            requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=2)
            return provider
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                provider.stop()
                raise
            time.sleep(0.1)
