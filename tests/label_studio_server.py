"""A real Label Studio 1.23.2 on 127.0.0.1 for the annotation tests: its own venv
(scripts/label_studio_install.sh), its own data folder (SQLite), and people who sign up through the
organization's invite link, log in and make their personal access tokens as they would in the browser."""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.helpers import REPO_ROOT, wait_until

SERVER_VENV = Path(os.environ.get("HAIC_LABEL_STUDIO_VENV", REPO_ROOT / ".venv-label-studio"))
ADMIN = ("admin@haic.test", "admin-password-1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Person:
    """Someone with an account: their logged-in browser session, user id and personal access token."""

    session: requests.Session
    user_id: int
    token: str


class LabelStudioServer:
    def __init__(self, data_dir: Path, document_root: Path):
        binary = SERVER_VENV / "bin" / "label-studio"
        if not binary.is_file():
            raise RuntimeError(f"no Label Studio server at {binary}: bash scripts/label_studio_install.sh")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "label-studio.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "LOCAL_FILES_SERVING_ENABLED": "true",
               "LOCAL_FILES_DOCUMENT_ROOT": str(document_root), "COLLECT_ANALYTICS": "false", "SENTRY_DSN": "",
               "LATEST_VERSION_CHECK": "false",  # else it asks pypi.org at start: no network but 127.0.0.1
               "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(binary), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
                 "--username", ADMIN[0], "--password", ADMIN[1]], env=env, stdout=log, stderr=subprocess.STDOUT)
        # Migrations of a fresh SQLite database take about half a minute, more on a busy machine.
        wait_until(self._healthy, 600, "Label Studio to answer /health", log=self.log)

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"Label Studio exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
        try:
            return requests.get(f"{self.url}/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    # -- people, as the browser makes them ---------------------------------------------------------

    def _form(self, session: requests.Session, path: str, fields: dict) -> requests.Response:
        session.get(f"{self.url}{path}")  # the form page sets the CSRF cookie
        return session.post(f"{self.url}{path}", data={"csrfmiddlewaretoken": session.cookies["csrftoken"], **fields},
                            headers={"Referer": f"{self.url}{path}"}, allow_redirects=False)

    def _person(self, session: requests.Session) -> Person:
        headers = {"X-CSRFToken": session.cookies["csrftoken"], "Referer": self.url}
        me = session.get(f"{self.url}/api/current-user/whoami", headers=headers)
        me.raise_for_status()
        made = session.post(f"{self.url}/api/token/", headers=headers)  # Account & Settings -> Personal Access Token
        assert made.status_code == 201, made.text
        return Person(session, int(me.json()["id"]), made.json()["token"])

    def admin(self) -> Person:
        session = requests.Session()
        response = self._form(session, "/user/login/", {"email": ADMIN[0], "password": ADMIN[1]})
        assert response.status_code == 302, response.text[-500:]
        return self._person(session)

    def sign_up(self, admin: Person, email: str, password: str) -> Person:
        """A new annotator through the organization's invite link (Organization -> Add People)."""
        invite = admin.session.get(f"{self.url}/api/invite").json()["invite_url"]
        session = requests.Session()
        response = self._form(session, invite, {"email": email, "password": password})
        assert response.status_code == 302, response.text[-500:]
        return self._person(session)
