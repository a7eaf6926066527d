"""The processes a benchmark run needs, all on loopback: a private redis-server
(``processes.RedisProcess``), the development wiki (in this process) and gunicorn. Each listens on a free port and is stopped by the process id
we started; nothing touches the machine's own Redis on 6379."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from flask_wikimedia.devwiki import DevClient, DevUser, DevWiki
from flask_wikimedia.devwiki.models import PLAIN_USER_RIGHTS, SYSOP_EXTRA_RIGHTS

from .processes import stop_process

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "be7c4be7c4be7c4be7c4be7c4be7c400"
CLIENT_SECRET = "b" * 40
SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789abcdef"

#: Rights a sysop on a large wiki holds beyond the plain-user and sysop defaults (real MediaWiki
#: right names), so the "long rights list" case is about as long as on English Wikipedia.
MORE_SYSOP_RIGHTS = (
    "abusefilter-hidden-log",
    "abusefilter-log-detail",
    "abusefilter-log-private",
    "abusefilter-modify",
    "abusefilter-modify-global",
    "abusefilter-modify-restricted",
    "abusefilter-revert",
    "abusefilter-view-private",
    "apihighlimits",
    "autoreview",
    "autoreviewrestore",
    "centralauth-merge",
    "centralauth-unmerge",
    "checkuser-log",
    "collectionsaveascommunitypage",
    "collectionsaveasuserpage",
    "deletechangetags",
    "editextendedsemiprotected",
    "editmyoptions",
    "editmyprivateinfo",
    "editmyusercss",
    "editmyuserjs",
    "editmyuserjson",
    "editmywatchlist",
    "extendedconfirmed",
    "flow-create-board",
    "flow-delete",
    "flow-edit-post",
    "flow-hide",
    "flow-lock",
    "gadgets-definition-edit",
    "gadgets-edit",
    "globalblock-whitelist",
    "hideuser",
    "ipinfo",
    "ipinfo-view-basic",
    "ipinfo-view-full",
    "managechangetags",
    "massmessage",
    "movestable",
    "mwoauthmanagemygrants",
    "mwoauthproposeconsumer",
    "mwoauthupdateownconsumer",
    "nuke",
    "oathauth-api-all",
    "oathauth-enable",
    "override-antispoof",
    "pagelang",
    "pagetriage-copyvio",
    "renameuser",
    "review",
    "sboverride",
    "siteadmin",
    "skipcaptcha",
    "spamblacklistlog",
    "stablesettings",
    "tboverride",
    "tboverride-account",
    "templateeditor",
    "titleblacklistlog",
    "torunblocked",
    "transcode-reset",
    "transcode-status",
    "unblockself",
    "upload_by_url",
    "urlshortener-create-url",
    "userrights",
    "userrights-interwiki",
    "validate",
    "viewmyprivateinfo",
    "viewmywatchlist",
    "viewsuppressed",
)
BIG_SYSOP_GROUPS = ["*", "user", "autoconfirmed", "extendedconfirmed", "sysop", "bureaucrat"]
BIG_SYSOP_GROUPS += ["interface-admin", "checkuser", "suppress", "abusefilter"]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


class ServiceError(RuntimeError):
    """A service did not start or did not answer as it should."""


def configure_devwiki(wiki: DevWiki) -> None:
    """Register the bench's client (confidential, any loopback callback) and extra users."""
    wiki.add_client(
        DevClient(
            client_id=CLIENT_ID,
            secret=CLIENT_SECRET,
            redirect_uri=None,  # both gunicorns (two ports) use this one client
            grants=["basic", "editpage", "highvolume"],
        )
    )
    wiki.add_user(
        DevUser(
            "BigSysop",
            groups=list(BIG_SYSOP_GROUPS),
            rights=sorted({*PLAIN_USER_RIGHTS, *SYSOP_EXTRA_RIGHTS, *MORE_SYSOP_RIGHTS}),
            editcount=250000,
            realname="Sysop With Many Rights",
            registered="20050101000000",
        )
    )
    wiki.add_user(DevUser("Refresher", editcount=5))


class Gunicorn:
    """gunicorn serving ``bench.app:create_app()`` with ``workers`` sync workers."""

    def __init__(self, name: str, port: int, env: Mapping[str, str], workers: int) -> None:
        self.name = name
        self.port = port
        self.env = {**os.environ, **env}
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self.logdir = Path(tempfile.mkdtemp(prefix="fw-bench-gunicorn-"))
        self.logfile = self.logdir / "gunicorn.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}"]
        args += ["--workers", str(self.workers), "--worker-class", "sync"]
        # Our own settings file: the repository's gunicorn.conf.py logs every request.
        args += ["--config", str(Path(__file__).with_name("gunicorn_conf.py"))]
        args += ["bench.app:create_app()"]
        with self.logfile.open("wb") as log:
            self.process = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"gunicorn ({self.name}) exited at startup:\n{self.output()}")
            try:
                if requests.get(self.base_url + "/floor/", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise ServiceError(f"gunicorn ({self.name}) did not answer:\n{self.output()}")

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children]

    def output(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace=15)
            self.process = None
        shutil.rmtree(self.logdir, ignore_errors=True)
