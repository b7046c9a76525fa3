"""インストールの手順: installing the downloaded certificate, a page per kind of computer.

``/portal/install/windows``, ``/portal/install/macos`` and ``/portal/install/firefox`` explain
step by step, in the words of the screens the office will see, how to install the PKCS#12 file
of A5 (:mod:`ra.web.portal.download` links to them), with what to do when it does not work.
They hold no data of anyone: the same page for every office.
"""

from __future__ import annotations

from flask import render_template

from ra.web.portal import portal_blueprint

blueprint = portal_blueprint("portal_install", "/portal/install")

PLATFORMS = ("windows", "macos", "firefox")


def _guide(platform: str) -> str:
    return render_template("portal/download/install.html", platform=platform)


@blueprint.route("/windows")
def windows() -> str:
    return _guide("windows")


@blueprint.route("/macos")
def macos() -> str:
    return _guide("macos")


@blueprint.route("/firefox")
def firefox() -> str:
    return _guide("firefox")
