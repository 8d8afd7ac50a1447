"""Earth Engine session setup: credentials, project and endpoint, checked before any work starts.

Only the Earth Engine export commands import this module, and they import it inside the command
body, so `senclr export --help` and `senclr export synthetic` never load `ee`. `ee` itself is
imported inside the functions for the same reason.

Credential sources (``--ee-credentials``):

- ``default``: first the Earth Engine credentials that ``earthengine authenticate`` stores in
  ``~/.config/earthengine/credentials`` (what a bare ``ee.Initialize()`` uses, so a user who
  followed the Earth Engine guide gets what they expect), then Application Default Credentials
  via ``google.auth.default`` with the Earth Engine scopes: ``gcloud auth application-default
  login``, ``GOOGLE_APPLICATION_CREDENTIALS``, or the metadata server on Dataflow/GCE/Cloud Run.
  Unlike ``ee.data.get_persistent_credentials`` this asks ADC for the scopes, which service-account
  ADC needs, and makes no network call: a bad token surfaces in ``connect``/``check_access``.
- ``none``: no credentials at all, only for a local fake server (``--ee-api-url`` on a loopback
  host); refused against Google's endpoints, where it could only fail later and less clearly.
- a path to a service-account JSON key: the key's own project is used when ``--project`` is absent.

The project is ``--project``, else the quota project stored with the credentials (``earthengine
set_project`` / ``gcloud auth application-default set-quota-project``), else, for a service account
(key file or ADC), its own project; anything else is an InputError that says how to authenticate. Key files are named
in messages, never quoted: errors from parsing them are replaced, not chained.
"""

from __future__ import annotations

import ipaddress
import json
import os
from urllib.parse import urlsplit

from senclr.errors import InputError

STANDARD_URL = "https://earthengine.googleapis.com"  # ee.data.DEFAULT_CLOUD_API_BASE_URL
HIGHVOLUME_URL = "https://earthengine-highvolume.googleapis.com"  # ee.data.HIGH_VOLUME_API_BASE_URL

SCOPES = (
    "https://www.googleapis.com/auth/earthengine",
    "https://www.googleapis.com/auth/cloud-platform",
)

AUTH_HELP = (
    "Earth Engine needs credentials and a Cloud project registered for Earth Engine. "
    "As a user: run `earthengine authenticate` (or `gcloud auth application-default login "
    f"--scopes={','.join(SCOPES)}`) and pass --project PROJECT_ID. "
    "As a service account: pass --ee-credentials KEY.json (its project is used unless --project "
    "is given). The project must be registered for Earth Engine with the Earth Engine API enabled "
    "(https://developers.google.com/earth-engine/guides/access)."
)


def is_loopback(url: str) -> bool:
    """True when `url` points at this machine (a local fake server), by name or address."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _service_account(path: str):
    """Load a service-account key; errors name the file and never carry its content."""
    from google.oauth2 import service_account

    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except OSError as e:
        raise InputError(f"cannot read the Earth Engine key file {path}: {e.strerror or type(e).__name__}") from None
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"the Earth Engine key file {path} is not JSON; expected a service-account key "
                         "downloaded from the Cloud console") from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind != "service_account":
        shown = kind if kind in ("authorized_user", "external_account", "impersonated_service_account") else "unknown"
        raise InputError(f"the Earth Engine key file {path} is not a service-account key (type: {shown}); "
                         "for user credentials use --ee-credentials default. " + AUTH_HELP)
    try:
        return service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))
    except Exception:  # noqa: BLE001 - any parse failure; the message could echo key material
        raise InputError(f"the Earth Engine key file {path} is not a valid service-account key "
                         "(missing fields or an unreadable private key); download a new key") from None


def _default_credentials():
    """(credentials, project): EE's stored user credentials, else ADC; (None, None) when neither.

    The project is the quota project stored with the credentials; ADC's own project is used only for
    service accounts (key file or metadata server), as ee ignores gcloud's default resource project.
    """
    import google.auth
    import google.auth.exceptions
    from ee import oauth
    from google.auth import compute_engine
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    try:
        args = oauth.get_credentials_arguments()
    except (OSError, ValueError):
        args = {}
    if args.get("refresh_token"):
        creds = user_credentials.Credentials(None, **args)
        return creds, creds.quota_project_id or oauth.get_appdefault_project()
    try:
        creds, adc_project = google.auth.default(scopes=list(SCOPES))
    except google.auth.exceptions.DefaultCredentialsError:
        return None, None
    robot = isinstance(creds, (service_account.Credentials, compute_engine.Credentials))
    return creds, getattr(creds, "quota_project_id", None) or (adc_project if robot else None)


def _auth_failure(exc: BaseException) -> bool:
    """True when `exc` (or an exception it was raised from) is a 401/403 or a failed token refresh."""
    import google.auth.exceptions
    import googleapiclient.errors

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, google.auth.exceptions.RefreshError):
            return True
        if isinstance(exc, googleapiclient.errors.HttpError):
            status = getattr(exc.resp, "status", None)
            if status == 401:
                return True
            # A 403 for rate limits is retried by googleapiclient and is not an authorisation problem.
            content = (exc.content or b"").decode("utf-8", "replace").lower()
            return status == 403 and "ratelimitexceeded" not in content
        exc = exc.__cause__ or exc.__context__
    return False


def _raise_if_auth(exc: BaseException, during: str) -> None:
    if _auth_failure(exc):
        # The server's message (e.g. "Earth Engine API has not been used in project ...") helps and
        # holds no secret; RefreshError text comes from the token endpoint, not from the key.
        reason = str(exc.args[0] if exc.args else exc).rstrip(".")
        raise InputError(f"Earth Engine refused the credentials {during}: {reason}. {AUTH_HELP}") from None


def size_pool(connections: int) -> None:
    """Let the client keep ``connections`` HTTP connections open (requests' default is 10).

    With more threads than pooled connections, every extra request opens and drops a connection
    ("Connection pool is full" in the log): a TLS handshake per request against Google. The
    client builds its requests.Session once and offers no option for it, hence the private state.
    """
    import ee
    from requests.adapters import HTTPAdapter

    session = getattr(ee.data._get_state(), "requests_session", None)  # noqa: SLF001
    if session is not None and connections > 10:
        for prefix in ("https://", "http://"):
            session.mount(prefix, HTTPAdapter(pool_connections=connections, pool_maxsize=connections))


def connect(project: str | None, credentials: str = "default", api_url: str | None = None) -> None:
    """Initialise the `ee` client for `project` at `api_url` (STANDARD_URL when None).

    `credentials` is "default", "none" (loopback `api_url` only) or a service-account key path.
    Raises InputError for anything the user must fix: no credentials, no project, a bad key file,
    "none" against Google, or credentials Earth Engine rejects while initialising.
    """
    import ee

    url = (api_url or STANDARD_URL).rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise InputError(f"--ee-api-url must be an http(s) URL such as {STANDARD_URL} or "
                         f"{HIGHVOLUME_URL}, got {api_url!r}")

    if credentials == "none":
        if not is_loopback(url):
            raise InputError("--ee-credentials none only works with a local fake server (--ee-api-url "
                             f"http://127.0.0.1:PORT); {url} needs credentials. " + AUTH_HELP)
        creds = None
    elif credentials == "default":
        creds, found_project = _default_credentials()
        if creds is None:
            raise InputError("no Earth Engine credentials found. " + AUTH_HELP)
        project = project or found_project
    else:
        if not os.path.exists(credentials):
            raise InputError(f"--ee-credentials must be 'default', 'none' or a service-account key file; "
                             f"{credentials} does not exist")
        creds = _service_account(credentials)
        project = project or creds.project_id
    if not project:
        raise InputError("no Cloud project given for Earth Engine. " + AUTH_HELP)

    # ee.Initialize also downloads Google's data catalog (to warn about deprecated assets): pointless
    # against a local fake and an internet call in tests, including Beam worker processes.
    fetch = ee.deprecation._FetchDataCatalogStac
    if is_loopback(url):
        ee.deprecation._FetchDataCatalogStac = dict
    try:
        ee.Initialize(credentials=creds, url=url, project=project)
    except Exception as e:  # noqa: BLE001 - only auth failures are translated; the rest propagate
        if isinstance(e, ee.EEException) and str(e) == ee.NO_PROJECT_EXCEPTION:
            # ee refuses gcloud's own OAuth client project: the user must name theirs.
            raise InputError(f"Earth Engine cannot use project {project!r}. " + AUTH_HELP) from None
        _raise_if_auth(e, f"while connecting to {url} for project {project}")
        raise
    finally:
        ee.deprecation._FetchDataCatalogStac = fetch


def check_access() -> None:
    """Make one trivial computation so a 401/403 stops the command before it plans or starts work."""
    import ee

    try:
        ee.Number(1).getInfo()
    except Exception as e:  # noqa: BLE001 - only auth failures are translated; the rest propagate
        _raise_if_auth(e, "when checking access")
        raise
