"""`coopnet membership …`: governance from the command line,
through the running node's API (docs/PROTOCOL.md §5, §16)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from rich.console import Console
from rich.table import Table

from coopnet.node.engine.client import ApiError, call_api
from coopnet.node.engine.terminal import cell, table

STATUS_STYLE = {"founder": "green", "admitted": "green", "applicant": "yellow", "retired": "dim"}


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data) if args.json else text)


def cmd_membership(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ApiError as exc:
        if exc.code == "not_found" and getattr(args, "slug", None):
            # deploy/cli.py prints the hint after the refusal (a typo'd slug, most often)
            exc.hint = f"see `coopnet membership list --data {args.data}`"  # type: ignore[attr-defined]
        raise


def _run(args: argparse.Namespace) -> int:
    a = args.action
    if a == "list":
        view = call_api(args, "GET", "/membership")
        if args.json:
            print(json.dumps(view))
        else:
            Console().print(membership_table(view))
        return 0
    if a == "apply":
        r = call_api(
            args, "POST", "/membership/apply", {"about": args.about, "reason": args.reason}
        )
        _out(args, r, f"applied (event #{r['seq']}); members answer with `coopnet membership`")
    elif a == "consent":
        r = call_api(args, "POST", f"/membership/{args.slug}/consent")
        _out(args, r, f"consented to {args.slug} (event #{r['seq']})")
    elif a == "object":
        r = call_api(args, "POST", f"/membership/{args.slug}/object", {"reason": args.reason})
        _out(args, r, f"objected to {args.slug} (event #{r['seq']}); it is blocked while it stands")
    elif a == "withdraw":
        r = call_api(args, "POST", f"/membership/{args.slug}/withdraw")
        _out(args, r, f"objection to {args.slug} withdrawn (event #{r['seq']})")
    else:
        r = call_api(args, "POST", "/membership/retire", {"reason": args.reason})
        _out(args, r, f"retired (event #{r['seq']}): this node signs nothing more")
    return 0


def membership_table(view: dict[str, Any]) -> Table:
    title = f"{view['federation'] or 'development federation'}: membership"
    if view["charter"]:
        title += f" (admission: consents from more than {view['quorum_percent']}% of members,"
        title += " no standing objection)"
    out = table(title, "neighborhood", "status", "consents", "objections", "application",
                whole=("neighborhood",))  # fmt: skip
    for m in view["members"]:
        style = STATUS_STYLE.get(m["status"], "")
        objections = "; ".join(f"{o['member']}: {o['reason']}" for o in m["objections"])
        app = m["application"]
        out.add_row(  # event text: shown safe, never as markup (PROTOCOL.md §18)
            cell(m["slug"] + (" (me)" if m["slug"] == view["me"] else "")),
            cell(m["status"], style),
            cell(consents_text(m)),
            cell(objections),
            cell(application_text(app)),
        )
    return out


def application_text(app: dict[str, Any] | None) -> str:
    """An application as the table shows it: "about — reason", or the reason alone when
    the applicant said nothing about itself; "" when there is none."""
    if not app:
        return ""
    return f"{app['about']} — {app['reason']}" if app["about"] else str(app["reason"])


def consents_text(member: dict[str, Any]) -> str:
    """Who consented to a neighborhood's admission, how many, of how many the rule needs
    (PROTOCOL.md §16.4): "2 of 2 needed: millbrook, oakley"; "" for a founder, who was
    never voted on."""
    consents, needed = member["consents"], member["needed"]
    if member["status"] == "founder" or (member["application"] is None and not consents):
        return ""
    text = f"{len(consents)} of {needed} needed"
    return text + (f": {', '.join(consents)}" if consents else "")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default=os.environ.get("COOPNET_DATA", "."),
        help="the node's data directory (the node must be running; default $COOPNET_DATA or .)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")


def add_membership_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("membership", help="apply, consent, object, retire (by consent)")
    acts = m.add_subparsers(dest="action", metavar="ACTION", required=True)
    _common(acts.add_parser("list", help="every neighborhood's membership and the votes"))
    p = acts.add_parser("apply", help="ask to join the federation (a new neighborhood)")
    p.add_argument("--about", default="", help="who you are (at most 280 characters)")
    p.add_argument("--reason", required=True, help="why you want to join")
    _common(p)
    applicant = "the applying neighborhood's slug, as `membership list` shows it"
    p = acts.add_parser("consent", help="consent to a neighborhood's application")
    p.add_argument("slug", help=applicant)
    _common(p)
    p = acts.add_parser("object", help="object to an application: it is blocked meanwhile")
    p.add_argument("slug", help=applicant)
    p.add_argument("--reason", required=True, help="why (members see it)")
    _common(p)
    p = acts.add_parser("withdraw", help="withdraw this node's objection to an application")
    p.add_argument("slug", help=applicant)
    _common(p)
    p = acts.add_parser("retire", help="leave the federation: the last event this node signs")
    p.add_argument("--reason", default="", help="why (optional)")
    _common(p)
    m.set_defaults(func=cmd_membership)
