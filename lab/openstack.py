"""
The real nodes' OpenStack APIs (lab/nodes.py), as a client on the host sees them: Glance,
Cinder and Placement on the controller, on 127.0.0.1, without Keystone (Glance with no
paste flavor, Cinder's ``noauth``, Placement's ``noauth2``). The demo and tests/real ask
them what the services did with the formula's files.
"""

import time

import requests

GLANCE = "http://127.0.0.1:9292"
CINDER = "http://127.0.0.1:8776/v3"  # project-less URLs (volume API 3.67)
PLACEMENT = "http://127.0.0.1:8778"
#: Cinder's noauth takes "user:project" as the token; Placement's noauth2 "admin" as admin.
CINDER_HEADERS = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "volume 3.67"}
PLACEMENT_HEADERS = {"X-Auth-Token": "admin", "OpenStack-API-Version": "placement 1.6"}


class APIError(RuntimeError):
    """An API answered with an error, or something it made ended in ``error``."""


def wait(what, predicate, timeout=180, interval=2):
    """Poll ``predicate`` until it returns a true value; AssertionError naming ``what``
    (with the last value) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not after {timeout} s (last: {value})")


def answers(url):
    """Whether an HTTP server answers at ``url`` (any status): a restarted API listens a
    while after its process has started."""
    try:
        requests.get(url, timeout=5)
    except requests.ConnectionError:
        return False
    return True


def _call(method, url, headers=None, expect=None, **kwargs):
    response = requests.request(method, url, headers=headers, timeout=120, **kwargs)
    if response.status_code >= 400 or (expect and response.status_code != expect):
        raise APIError(f"{method} {url}: {response.status_code} {response.text[:500]}")
    return response.json() if response.text else None


def upload_image(name, data, store=None, glance=GLANCE):
    """A raw image uploaded through the Glance API at ``glance`` (into ``store``; default:
    Glance's default store); returns its id."""
    image = _call("POST", f"{glance}/v2/images", expect=201, json={
        "name": name, "disk_format": "raw", "container_format": "bare"})
    headers = {"Content-Type": "application/octet-stream"}
    if store:
        headers["X-Image-Meta-Store"] = store
    _call("PUT", f"{glance}/v2/images/{image['id']}/file", expect=204, data=data,
          headers=headers)
    return image["id"]


def image(image_id, glance=GLANCE):
    """Glance's record of an image (``status``, ``direct_url``, ...)."""
    return _call("GET", f"{glance}/v2/images/{image_id}")


def cinder(method, path, **kwargs):
    """A call to Cinder's v3 API as the admin project."""
    return _call(method, CINDER + path, headers=CINDER_HEADERS, **kwargs)


def _available(kind, ident):
    item = cinder("GET", f"/{kind}s/{ident}")[kind]
    if item["status"] == "error":
        raise APIError(f"{kind} {ident} ended in error: {item}")
    return item["status"] == "available" and item


def volume_type(name, backend):
    """A volume type whose volumes the scheduler places on Cinder backend ``backend``
    (``volume_backend_name``); returns its name."""
    types = cinder("GET", "/types")["volume_types"]
    if not any(found["name"] == name for found in types):
        cinder("POST", "/types", json={"volume_type": {
            "name": name, "extra_specs": {"volume_backend_name": backend}}})
    return name


def volume_from_image(image_id, name, size=1, timeout=180, volume_type=None):
    """A volume created from an image through Cinder's API, once available."""
    spec = {"size": size, "imageRef": image_id, "name": name}
    if volume_type:
        spec["volume_type"] = volume_type
    created = cinder("POST", "/volumes", json={"volume": spec})["volume"]
    return wait(f"volume {name} from image {image_id}",
                lambda: _available("volume", created["id"]), timeout)


def restore(backup_id, name, timeout=240):
    """A new volume restored from a backup through Cinder's API, once available."""
    restored = cinder("POST", f"/backups/{backup_id}/restore",
                      json={"restore": {"name": name}})["restore"]
    return wait(f"volume {name} restored from backup {backup_id}",
                lambda: _available("volume", restored["volume_id"]), timeout)


def backup(volume_id, name, timeout=240):
    """A backup of a volume made through Cinder's API, once available. For up to a minute
    after cinder-backup starts, Cinder's scheduler does not know its driver is ready (it
    learns from the service's periodic report) and fails the backup at once with "Service
    not found for creating backup.": such a backup is deleted and asked for again."""
    deadline = time.monotonic() + timeout
    while True:
        created = cinder("POST", "/backups", json={"backup": {"volume_id": volume_id,
                                                              "name": name}})["backup"]
        try:
            return wait(f"backup {name} of volume {volume_id}",
                        lambda: _available("backup", created["id"]),
                        max(1, deadline - time.monotonic()))
        except APIError as error:
            if "Service not found" not in str(error) or time.monotonic() > deadline:
                raise
            cinder("DELETE", f"/backups/{created['id']}")
            time.sleep(10)


def cinder_services():
    """Cinder's services as its API lists them (``binary``, ``host``, ``state``, ...)."""
    return cinder("GET", "/os-services")["services"]


def resource_providers():
    return _call("GET", f"{PLACEMENT}/resource_providers",
                 headers=PLACEMENT_HEADERS)["resource_providers"]


def inventories(provider_uuid):
    """{resource class: inventory} of a resource provider."""
    return _call("GET", f"{PLACEMENT}/resource_providers/{provider_uuid}/inventories",
                 headers=PLACEMENT_HEADERS)["inventories"]
