"""Elastic's Windows Security ingest pipeline, as data: one row per event id.

What the ``system.security`` / ``windows.forwarded`` pipelines (and Winlogbeat 8's security
module) do to a Security-channel event, read from elastic/integrations
``security_standard.yml`` and ``security_common.yml`` (sources in ECS_MAPPING.md section 7).
The pipeline is a fixed sequence of steps; which steps run for an event id is a row of
``EVENTS`` (built from ``_TABLE`` below), so adding an event is adding a line, not code.

Deliberate differences from the pipeline, each because the result would be worse offline:
``AccessList``/``AccessMask`` are kept as logged (Elastic rewrites them to code lists, while
prebuilt rules still match ``AccessList : "*%%4417*"``); SDDL, audit-subcategory and trust
decoding and geoip are not done. ``winlog.logon.id`` is set exactly as Elastic does; the
"intended" correction is applied afterwards by ``vigil.events.logon``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vigil.events.pipelines.common import (
    Doc,
)
from vigil.events.pipelines.common import (
    add_related as _add_related,
)
from vigil.events.pipelines.common import (
    decode_long as _decode_long,
)
from vigil.events.pipelines.common import (
    sub as _sub,
)

# code | event.category | event.type | event.action | steps (see STEPS)
_TABLE = """
1100 process               end                  logging-service-shutdown            auth
1102 iam                   admin,change         audit-log-cleared                   userdata,auth
1104 iam                   admin                logging-full                        auth
1105 iam                   admin                auditlog-archieved                  auth
1108 iam                   admin                logging-processing-error            auth
4610 configuration         access               authentication-package-loaded       -
4611 configuration         change               trusted-logon-process-registered    -
4614 configuration         access               notification-package-loaded         -
4616 configuration         change               system-time-changed                 -
4622 configuration         access               security-package-loaded             -
4624 authentication        start                logged-in                           target,auth,rel_subject
4625 authentication        start                logon-failed                        target,auth,failure
4627 iam                   info                 group-membership-info               subject,to_target,effective
4634 authentication        end                  logged-out                          target,logon_target
4647 authentication        end                  logged-out                          target,logon_target
4648 authentication        start                logged-in-explicit                  target,subject,effective,auth,rel_subject
4657 registry,configuration change              registry-value-modified             subject
4662 iam,configuration     admin,change         object-operation-performed          subject
4658 iam,configuration     change               handle-closed-object                subject,auth
4659 iam,configuration     change               object-was-requested-with-intent-to-delete subject,auth,object
4660 file,registry         deletion             object-deleted                      subject,auth
4664 file                  creation             create-hard-link                    subject,object
4675 authentication        info                 sids-filtered                       subject,to_target,effective
4690 process               access               duplicate-handle-attempt            subject,auth
4691 process               access               indirect-object-access-requested    subject,auth
4692 configuration         access               dpapi-master-key-backup-attempted   subject
4695 configuration         access               auditable-data-unprotection-attempted subject
4670 iam,configuration     admin,change         permissions-changed                 subject,to_target,auth
4672 iam                   admin                logged-in-special                   subject,privileges
4673 iam                   admin                privileged-service-called           subject,auth,privileges
4674 iam                   admin                privileged-operation                subject,auth,privileges
4688 process               start                created-process                     subject,effective,process,rel_target
4689 process               end                  exited-process                      subject,auth
4697 iam,configuration     admin,change         service-installed                   subject,auth
4698 iam,configuration     creation,admin       scheduled-task-created              subject
4699 iam,configuration     deletion,admin       scheduled-task-deleted              subject
4700 iam,configuration     change,admin         scheduled-task-enabled              subject
4701 iam,configuration     change,admin         scheduled-task-disabled             subject
4702 iam,configuration     change,admin         scheduled-task-updated              subject
4706 configuration         creation             domain-trust-added                  subject
4707 configuration         deletion             domain-trust-removed                subject
4713 configuration         change               kerberos-policy-changed             subject
4714 configuration         change               encrypted-data-recovery-policy-changed -
4715 configuration         change               object-audit-policy-changed         -
4716 configuration         change               trusted-domain-information-changed  subject
4717 iam,configuration     admin,change         system-security-access-granted      subject
4718 iam,configuration     admin,deletion       system-security-access-removed      subject
4719 iam,configuration     admin,change         changed-audit-config                subject,auth
4720 iam                   user,creation        added-user-account                  subject,to_target,auth,rel_target
4722 iam                   user,change          enabled-user-account                subject,to_target,auth,rel_target
4723 iam                   user,change          changed-password                    subject,to_target,auth,rel_target
4724 iam                   user,change          reset-password                      subject,to_target,auth,rel_target
4725 iam                   user,deletion        disabled-user-account               subject,to_target,auth,rel_target
4726 iam                   user,deletion        deleted-user-account                subject,to_target,auth,rel_target
4727 iam                   group,creation       added-group-account                 member,subject,auth
4728 iam                   group,change         added-member-to-group               member,subject,auth
4729 iam                   group,change         removed-member-from-group           member,subject,auth
4730 iam                   group,deletion       deleted-group-account               member,subject,auth
4731 iam                   group,creation       added-group-account                 member,subject,auth
4732 iam                   group,change         added-member-to-group               member,subject,auth
4733 iam                   group,change         removed-member-from-group           member,subject,auth
4734 iam                   group,deletion       deleted-group-account               member,subject,auth
4735 iam                   group,change         modified-group-account              member,subject,auth
4737 iam                   group,change         modified-group-account              member,subject,auth
4738 iam                   user,change          modified-user-account               subject,to_target,auth,rel_target
4739 configuration         change               domain-policy-changed               subject
4740 iam                   user,change          locked-out-user-account             subject,to_target,auth,rel_target
4741 iam                   creation,admin       added-computer-account              computer,subject,auth,privileges
4742 iam                   change,admin         changed-computer-account            computer,subject,auth,privileges
4743 iam                   deletion,admin       deleted-computer-account            computer,subject,auth,privileges
4744 iam                   group,creation       added-distribution-group-account    member,subject,auth
4745 iam                   group,change         changed-distribution-group-account  member,subject,auth
4746 iam                   group,change         added-member-to-distribution-group  member,subject,auth
4747 iam                   group,change         removed-member-from-distribution-group member,subject,auth
4748 iam                   group,deletion       deleted-distribution-group-account  member,subject,auth
4749 iam                   group,creation       added-distribution-group-account    member,subject,auth
4750 iam                   group,change         changed-distribution-group-account  member,subject,auth
4751 iam                   group,change         added-member-to-distribution-group  member,subject,auth
4752 iam                   group,change         removed-member-from-distribution-group member,subject,auth
4753 iam                   group,deletion       deleted-distribution-group-account  member,subject,auth
4754 iam                   group,creation       added-group-account                 member,subject,auth
4755 iam                   group,change         modified-group-account              member,subject,auth
4756 iam                   group,change         added-member-to-group               member,subject,auth
4757 iam                   group,change         removed-member-from-group           member,subject,auth
4758 iam                   group,deletion       deleted-group-account               member,subject,auth
4759 iam                   group,creation       added-distribution-group-account    member,subject,auth
4760 iam                   group,change         changed-distribution-group-account  member,subject,auth
4761 iam                   group,change         added-member-to-distribution-group  member,subject,auth
4762 iam                   group,change         removed-member-from-distribution-group member,subject,auth
4763 iam                   group,deletion       deleted-distribution-group-account  member,subject,auth
4764 iam                   group,change         type-changed-group-account          member,subject,auth
4767 iam                   user,change          unlocked-user-account               subject,to_target,auth,rel_target
4768 authentication        start                kerberos-authentication-ticket-requested target,auth,kerberos
4769 authentication        start                kerberos-service-ticket-requested   target,auth,kerberos
4770 authentication        start                kerberos-service-ticket-renewed     target,auth,kerberos
4771 authentication        start                kerberos-preauth-failed             target,auth,kerberos
4776 authentication        start                credential-validated                target,failure
4778 authentication,session start               session-reconnected                 session
4779 authentication,session end                 session-disconnected                session
4781 iam                   user,change          renamed-user-account                subject
4797 iam                   user,info            query-existence-of-blank-password   subject,to_target,rel_subject,rel_target
4798 iam                   user,info            group-membership-enumerated         subject,to_target,auth,rel_target
4799 iam                   group,info           user-member-enumerated              member,subject,auth
4817 iam,configuration     admin,change         object-audit-changed                subject,to_target,auth
4902 iam,configuration     admin,creation       user-audit-policy-created           -
4904 iam,configuration     admin,change         security-event-source-added         subject,auth
4905 iam,configuration     admin,deletion       security-event-source-removed       subject,auth
4906 iam,configuration     admin,change         crash-on-audit-changed              -
4907 iam,configuration     admin,change         audit-setting-changed               subject,to_target,auth
4908 iam,configuration     admin,change         special-group-table-changed         -
4912 iam,configuration     admin,change         per-user-audit-policy-changed       subject,auth
4950 configuration         change               windows-firewall-setting-changed    -
4954 configuration         change               windows-firewall-group-policy-changed -
4964 iam                   admin,group          logged-in-special                   target,logon_target
5024 process               start                windows-firewall-service-started    -
5025 process               end                  windows-firewall-service-stopped    -
5033 driver                start                windows-firewall-driver-started     -
5034 driver                end                  windows-firewall-driver-stopped     -
5037 driver                end                  windows-firewall-driver-error       -
5136 iam,configuration     admin,change         directory-service-object-modified   subject
5140 network,file          info,access          network-share-object-accessed       subject,auth,share
5145 network,file          info,access          network-share-object-access-checked subject,auth,share
5152 network               connection,info,denied windows-firewall-packet-drop      connection
5156 network               connection,info,allowed windows-firewall-connection      connection
5157 network               connection,info,denied windows-firewall-packet-block     connection
5158 network               info                 windows-firewall-bind-local-port    connection
5379 iam                   user,info            credential-manager-credentials-were-read subject,rel_subject
5380 iam                   user,info            vault-credential-find               subject,rel_subject
5381 iam                   user,info            vault-credentials-were-read         subject,rel_subject
5382 iam                   user,info            vault-credentials-were-read         subject,rel_subject
"""


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What the security pipeline does to one event id."""

    category: tuple[str, ...]
    type: tuple[str, ...]
    action: str | None
    steps: frozenset[str]


def _parse_table(text: str) -> dict[str, EventSpec]:
    specs: dict[str, EventSpec] = {}
    for line in text.strip().splitlines():
        code, category, kind, action, steps = line.split()
        specs[code] = EventSpec(
            category=() if category == "-" else tuple(category.split(",")),
            type=() if kind == "-" else tuple(kind.split(",")),
            action=None if action == "-" else action,
            steps=frozenset() if steps == "-" else frozenset(steps.split(",")),
        )
    return specs


EVENTS: dict[str, EventSpec] = _parse_table(_TABLE)
_NO_SPEC = EventSpec((), (), None, frozenset())

LOGON_TYPES = {"2": "Interactive", "3": "Network", "4": "Batch", "5": "Service", "7": "Unlock",
               "8": "NetworkCleartext", "9": "NewCredentials", "10": "RemoteInteractive",
               "11": "CachedInteractive"}

SERVICE_TYPES = {"0x1": "Kernel Driver", "0x2": "File System Driver", "0x8": "Recognizer Driver",
                 "0x10": "Win32 Own Process", "0x20": "Win32 Share Process",
                 "0x110": "Interactive Own Process", "0x120": "Interactive Share Process"}

# FailureReason %%NNNN texts (msobjs.dll message table, logon failures only).
FAILURE_REASONS = {
    "2304": "An Error occured during Logon.",
    "2305": "The specified user account has expired.",
    "2306": "The NetLogon component is not active.",
    "2307": "Account locked out.",
    "2308": "The user has not been granted the requested logon type at this machine.",
    "2309": "The specified account's password has expired.",
    "2310": "Account currently disabled.",
    "2311": "Account logon time restriction violation.",
    "2312": "User not allowed to logon at this computer.",
    "2313": "Unknown user name or bad password.",
    "2314": "Domain sid inconsistent.",
    "2315": "Smartcard logon is required and was not used.",
}

# NTSTATUS codes of 4625/4776 Status and SubStatus.
LOGON_STATUS = {
    "0xc000005e": "There are currently no logon servers available to service the logon request.",
    "0xc0000064": "User logon with misspelled or bad user account",
    "0xc000006a": "User logon with misspelled or bad password",
    "0xc000006d": "This is either due to a bad username or authentication information",
    "0xc000006e": "Unknown user name or bad password.",
    "0xc000006f": "User logon outside authorized hours",
    "0xc0000070": "User logon from unauthorized workstation",
    "0xc0000071": "User logon with expired password",
    "0xc0000072": "User logon to account disabled by administrator",
    "0xc00000dc": "Indicates the Sam Server was in the wrong state to perform the desired "
                  "operation.",
    "0xc0000133": "Clocks between DC and other computer too far out of sync",
    "0xc000015b": "The user has not been granted the requested logon type (aka logon right) at "
                  "this machine",
    "0xc000018c": "The logon request failed because the trust relationship between the primary "
                  "domain and the trusted domain failed.",
    "0xc0000192": "An attempt was made to logon, but the Netlogon service was not started.",
    "0xc0000193": "User logon with expired account",
    "0xc0000224": "User is required to change password at next logon",
    "0xc0000225": "Evidently a bug in Windows and not a risk",
    "0xc0000234": "User logon with account locked",
    "0xc00002ee": "Failure Reason: An Error occurred during Logon",
    "0xc0000413": "Logon Failure: The machine you are logging onto is protected by an "
                  "authentication firewall. The specified account is not allowed to "
                  "authenticate to the machine.",
    "0xc0000371": "The local account store does not contain secret material for the specified "
                  "account",
    "0x0": "Status OK.",
}

TICKET_OPTIONS = (
    (0x40000000, "Forwardable"), (0x20000000, "Forwarded"), (0x10000000, "Proxiable"),
    (0x08000000, "Proxy"), (0x04000000, "Allow-postdate"), (0x02000000, "Postdated"),
    (0x01000000, "Invalid"), (0x00800000, "Renewable"), (0x00400000, "Initial"),
    (0x00200000, "Pre-authent"), (0x00100000, "Opt-hardware-auth"),
    (0x00080000, "Transited-policy-checked"), (0x00040000, "Ok-as-delegate"),
    (0x00020000, "Request-anonymous"), (0x00010000, "Name-canonicalize"),
    (0x00000020, "Disable-transited-check"), (0x00000010, "Renewable-ok"),
    (0x00000008, "Enc-tkt-in-skey"), (0x00000002, "Renew"), (0x00000001, "Validate"),
)
TICKET_ENCRYPTION = {"0x1": "DES-CBC-CRC", "0x3": "DES-CBC-MD5", "0x11": "AES128-CTS-HMAC-SHA1-96",
                     "0x12": "AES256-CTS-HMAC-SHA1-96", "0x17": "RC4-HMAC",
                     "0x18": "RC4-HMAC-EXP", "0xffffffff": "FAIL"}
KERBEROS_STATUS = {
    "0x0": "KDC_ERR_NONE", "0x1": "KDC_ERR_NAME_EXP", "0x2": "KDC_ERR_SERVICE_EXP",
    "0x3": "KDC_ERR_BAD_PVNO", "0x4": "KDC_ERR_C_OLD_MAST_KVNO", "0x5": "KDC_ERR_S_OLD_MAST_KVNO",
    "0x6": "KDC_ERR_C_PRINCIPAL_UNKNOWN", "0x7": "KDC_ERR_S_PRINCIPAL_UNKNOWN",
    "0x8": "KDC_ERR_PRINCIPAL_NOT_UNIQUE", "0x9": "KDC_ERR_NULL_KEY",
    "0xA": "KDC_ERR_CANNOT_POSTDATE", "0xB": "KDC_ERR_NEVER_VALID", "0xC": "KDC_ERR_POLICY",
    "0xD": "KDC_ERR_BADOPTION", "0xE": "KDC_ERR_ETYPE_NOTSUPP", "0xF": "KDC_ERR_SUMTYPE_NOSUPP",
    "0x10": "KDC_ERR_PADATA_TYPE_NOSUPP", "0x11": "KDC_ERR_TRTYPE_NO_SUPP",
    "0x12": "KDC_ERR_CLIENT_REVOKED", "0x13": "KDC_ERR_SERVICE_REVOKED",
    "0x14": "KDC_ERR_TGT_REVOKED", "0x15": "KDC_ERR_CLIENT_NOTYET",
    "0x16": "KDC_ERR_SERVICE_NOTYET", "0x17": "KDC_ERR_KEY_EXPIRED",
    "0x18": "KDC_ERR_PREAUTH_FAILED", "0x19": "KDC_ERR_PREAUTH_REQUIRED",
    "0x1A": "KDC_ERR_SERVER_NOMATCH", "0x1B": "KDC_ERR_MUST_USE_USER2USER",
    "0x1F": "KRB_AP_ERR_BAD_INTEGRITY", "0x20": "KRB_AP_ERR_TKT_EXPIRED",
    "0x21": "KRB_AP_ERR_TKT_NYV", "0x22": "KRB_AP_ERR_REPEAT", "0x23": "KRB_AP_ERR_NOT_US",
    "0x24": "KRB_AP_ERR_BADMATCH", "0x25": "KRB_AP_ERR_SKEW", "0x26": "KRB_AP_ERR_BADADDR",
    "0x27": "KRB_AP_ERR_BADVERSION", "0x28": "KRB_AP_ERR_MSG_TYPE",
    "0x29": "KRB_AP_ERR_MODIFIED", "0x2A": "KRB_AP_ERR_BADORDER",
    "0x2C": "KRB_AP_ERR_BADKEYVER", "0x2D": "KRB_AP_ERR_NOKEY", "0x2E": "KRB_AP_ERR_MUT_FAIL",
    "0x2F": "KRB_AP_ERR_BADDIRECTION", "0x30": "KRB_AP_ERR_METHOD", "0x31": "KRB_AP_ERR_BADSEQ",
    "0x32": "KRB_AP_ERR_INAPP_CKSUM", "0x33": "KRB_AP_PATH_NOT_ACCEPTED",
    "0x34": "KRB_ERR_RESPONSE_TOO_BIG", "0x3C": "KRB_ERR_GENERIC",
    "0x3D": "KRB_ERR_FIELD_TOOLONG", "0x3E": "KDC_ERR_CLIENT_NOT_TRUSTED",
    "0x3F": "KDC_ERR_KDC_NOT_TRUSTED", "0x40": "KDC_ERR_INVALID_SIG",
    "0x41": "KDC_ERR_KEY_TOO_WEAK", "0x42": "KRB_AP_ERR_USER_TO_USER_REQUIRED",
    "0x43": "KRB_AP_ERR_NO_TGT", "0x44": "KDC_ERR_WRONG_REALM",
}
UAC_FLAGS = (
    (0x00000001, "USER_ACCOUNT_DISABLED"), (0x00000002, "USER_HOME_DIRECTORY_REQUIRED"),
    (0x00000004, "USER_PASSWORD_NOT_REQUIRED"), (0x00000008, "USER_TEMP_DUPLICATE_ACCOUNT"),
    (0x00000010, "USER_NORMAL_ACCOUNT"), (0x00000020, "USER_MNS_LOGON_ACCOUNT"),
    (0x00000040, "USER_INTERDOMAIN_TRUST_ACCOUNT"), (0x00000080, "USER_WORKSTATION_TRUST_ACCOUNT"),
    (0x00000100, "USER_SERVER_TRUST_ACCOUNT"), (0x00000200, "USER_DONT_EXPIRE_PASSWORD"),
    (0x00000400, "USER_ACCOUNT_AUTO_LOCKED"), (0x00000800, "USER_ENCRYPTED_TEXT_PASSWORD_ALLOWED"),
    (0x00001000, "USER_SMARTCARD_REQUIRED"), (0x00002000, "USER_TRUSTED_FOR_DELEGATION"),
    (0x00004000, "USER_NOT_DELEGATED"), (0x00008000, "USER_USE_DES_KEY_ONLY"),
    (0x00010000, "USER_DONT_REQUIRE_PREAUTH"), (0x00020000, "USER_PASSWORD_EXPIRED"),
    (0x00040000, "USER_TRUSTED_TO_AUTHENTICATE_FOR_DELEGATION"),
    (0x00080000, "USER_NO_AUTH_DATA_REQUIRED"), (0x00100000, "USER_PARTIAL_SECRETS_ACCOUNT"),
    (0x00200000, "USER_USE_AES_KEYS"),
)
IANA_TRANSPORTS = {"1": "icmp", "2": "igmp", "4": "ipv4", "6": "tcp", "8": "egp", "9": "igp",
                   "12": "pup", "17": "udp", "27": "rdp", "28": "irtp", "33": "dccp",
                   "35": "idpr", "41": "ipv6", "43": "ipv6-route", "44": "ipv6-frag",
                   "46": "rsvp", "47": "gre", "50": "esp", "58": "ipv6-icmp",
                   "59": "ipv6-nonxt", "60": "ipv6-opts"}

# Linear-time: anchored, no nested repetition.
_MAPPED_IPV4 = re.compile(r"^\[?::ffff:([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)(?:\](?::[0-9]+)?)?$")
_MEMBER_SPLIT = re.compile(r"(?<!\\),")


# ---------------------------------------------------------------------------- helpers


def _name_of(path: str) -> str:
    """The part after the last backslash (the whole path when there is none)."""
    return path.rsplit("\\", 1)[-1]


def split_command_line(command_line: str) -> list[str]:
    """Arguments as the 4688 pipeline splits them: at whitespace outside double quotes,
    quotes kept, consecutive blanks giving empty arguments."""
    args: list[str] = []
    start = 0
    in_quote = False
    for index, char in enumerate(command_line):
        if char == '"':
            in_quote = not in_quote
        elif char.isspace() and not in_quote:
            args.append(command_line[start:index])
            start = index + 1
    if command_line:
        args.append(command_line[start:])
    return args


# ------------------------------------------------------------------------------ steps
# Each step reads ``data`` (winlog.event_data) and writes ECS fields into ``doc``; they run in
# the pipeline's order because later ones overwrite or append to what earlier ones set.

Step = Callable[[Doc, Doc, dict[str, Any], str], None]


def _logon_type(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    name = LOGON_TYPES.get(str(data.get("LogonType")))
    if name:
        _sub(winlog, "logon")["type"] = name


def _uac(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    raw = data.get("NewUacValue")
    if not isinstance(raw, str) or raw == "-":
        return
    value = _decode_long(raw)
    if value is None:
        return
    names = [name for flag, name in UAC_FLAGS if value & flag == flag]
    if not names:
        return
    data["NewUACList"] = names
    uac = data.get("UserAccountControl")
    if isinstance(uac, str) and uac != "-":
        data["UserAccountControl"] = [part.replace("%%", "").strip() for part in uac.split("\n")
                                      if part.replace("%%", "").strip()]


def _kerberos(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    options = data.get("TicketOptions")
    if isinstance(options, str):
        value = _decode_long(options)
        if value is not None:
            names = [name for flag, name in TICKET_OPTIONS if value & flag == flag]
            if names:
                data["TicketOptionsDescription"] = names
    encryption = data.get("TicketEncryptionType")
    if isinstance(encryption, str) and encryption.lower() in TICKET_ENCRYPTION:
        data["TicketEncryptionTypeDescription"] = TICKET_ENCRYPTION[encryption.lower()]
    status = data.get("Status")
    if code in ("4768", "4769", "4770", "4771") and status in KERBEROS_STATUS:
        data["StatusDescription"] = KERBEROS_STATUS[status]


def _service(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    name = data.get("ServiceName")
    if name is not None:
        _sub(doc, "service")["name"] = name
    kind = data.get("ServiceType")
    if kind is not None and kind in SERVICE_TYPES:
        _sub(doc, "service")["type"] = SERVICE_TYPES[kind]


def _failure_reason(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    reason = data.get("FailureReason")
    if isinstance(reason, str):
        key = reason.replace("%%", "")
        failure = _sub(_sub(winlog, "logon"), "failure")
        failure["reason"] = FAILURE_REASONS.get(key, key)


def _failure_status(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    status = data.get("Status")
    if status in LOGON_STATUS:
        _sub(_sub(winlog, "logon"), "failure")["status"] = LOGON_STATUS[status]
    sub_status = data.get("SubStatus")
    if sub_status in LOGON_STATUS:
        _sub(_sub(winlog, "logon"), "failure")["sub_status"] = LOGON_STATUS[sub_status]


def _session(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    name = data.get("AccountName")
    if name is not None:
        _sub(doc, "user")["name"] = name
        _add_related(doc, "user", name)
    domain = data.get("AccountDomain")
    if domain is not None:
        _sub(doc, "user")["domain"] = domain
    address = data.get("ClientAddress")
    if address is not None and address not in ("-", "Unknown"):
        if address == "LOCAL":
            address = data["ClientAddress"] = "127.0.0.1"
        _sub(doc, "source")["ip"] = address
        _add_related(doc, "ip", address)
    client = data.get("ClientName")
    if client is not None:
        _sub(doc, "source")["domain"] = client
    logon_id = data.get("LogonID")
    if logon_id is not None:
        _sub(winlog, "logon")["id"] = logon_id


def _put_user(doc: Doc, key: str, value: Any) -> None:
    """user.<key>, or user.target.<key> when user.<key> is already taken."""
    user = _sub(doc, "user")
    if user.get(key) is None:
        user[key] = value
    else:
        _sub(user, "target")[key] = value


def _target_user(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    sid = data.get("TargetUserSid", data.get("TargetSid"))
    if sid is not None:
        _put_user(doc, "id", sid)
    name = data.get("TargetUserName")
    if isinstance(name, str):
        short = name.split("@", 1)[0]
        _put_user(doc, "name", short)
        _add_related(doc, "user", short)
    domain = data.get("TargetDomainName")
    if domain is not None:
        _put_user(doc, "domain", domain)


def _member(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    member = data.get("MemberName")
    if isinstance(member, str):
        parts = _MEMBER_SPLIT.split(member)
        name = parts[0].replace("CN=", "").replace("cn=", "")
        target = _sub(_sub(doc, "user"), "target")
        target["name"] = name
        _add_related(doc, "user", name)
        if len(parts) >= 4:
            target["domain"] = parts[3].replace("DC=", "").replace("dc=", "")
    group: Doc = {}
    for key in ("TargetUserSid", "TargetSid"):
        if data.get(key) is not None:
            group["id"] = data[key]
    if data.get("TargetUserName") is not None:
        group["name"] = data["TargetUserName"]
    domain = data.get("TargetDomainName")
    if isinstance(domain, str):
        group["domain"] = domain.replace("DC=", "").replace("dc=", "")
    if group:
        _sub(doc, "group").update(group)
    user = doc.get("user")
    if isinstance(user, dict) and isinstance(user.get("target"), dict):
        user["target"]["group"] = dict(group)


def _computer(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    for source, key in (("TargetSid", "id"), ("TargetUserName", "name"),
                        ("TargetDomainName", "domain")):
        if data.get(source) is not None:
            _sub(winlog, "computerObject")[key] = data[source]


def _logon_target(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    if data.get("TargetLogonId") is not None:
        _sub(winlog, "logon")["id"] = data["TargetLogonId"]


def _subject_user(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    _copy_subject(doc, data)


def _copy_subject(doc: Doc, source: dict[str, Any]) -> None:
    if source.get("SubjectUserSid") is not None:
        _sub(doc, "user")["id"] = source["SubjectUserSid"]
    if source.get("SubjectUserName") is not None:
        _sub(doc, "user")["name"] = source["SubjectUserName"]
        _add_related(doc, "user", source["SubjectUserName"])
    if source.get("SubjectDomainName") is not None:
        _sub(doc, "user")["domain"] = source["SubjectDomainName"]


def _copy_target_to(doc: Doc, data: dict[str, Any], key: str, sid_field: str) -> None:
    """Target* into user.<key> ("-" and empty skipped; the part before "@" for names)."""
    user = _sub(doc, "user")
    out: Doc = {}
    sid = data.get(sid_field)
    if sid not in (None, "", "-"):
        out["id"] = sid
    name = data.get("TargetUserName")
    if isinstance(name, str) and name not in ("", "-"):
        out["name"] = name.split("@", 1)[0]
        _add_related(doc, "user", out["name"])
    domain = data.get("TargetDomainName")
    if domain not in (None, "", "-"):
        out["domain"] = domain
    if out:
        _sub(user, key).update(out)


def _to_target(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    _copy_target_to(doc, data, "target", "TargetSid")


def _effective(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    _copy_target_to(doc, data, "effective", "TargetUserSid")


def _user_data_subject(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    user_data = winlog.get("user_data")
    if isinstance(user_data, dict):
        _copy_subject(doc, user_data)


def _subject_logon(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    # Unconditional in Elastic's pipeline: every event with SubjectLogonId, 4624 included.
    if data.get("SubjectLogonId") is not None:
        _sub(winlog, "logon")["id"] = data["SubjectLogonId"]
    user_data = winlog.get("user_data")
    if code == "1102" and isinstance(user_data, dict) and user_data.get("SubjectLogonId"):
        _sub(winlog, "logon")["id"] = user_data["SubjectLogonId"]


def _auth(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    """The "common auth fields": process, source address and workstation leave event_data."""
    pid = data.get("ProcessId")
    if isinstance(pid, str) and (value := _decode_long(pid)) is not None:
        _sub(doc, "process")["pid"] = value
        del data["ProcessId"]
    executable = data.pop("ProcessName", None)
    if executable is not None:
        _sub(doc, "process")["executable"] = executable
    address = data.get("IpAddress")
    if address is not None and address != "-":
        _sub(doc, "source")["ip"] = data.pop("IpAddress")
    port = data.get("IpPort")
    if isinstance(port, str) and port != "-" and (number := _decode_long(port)) is not None:
        _sub(doc, "source")["port"] = number
        del data["IpPort"]
    workstation = data.pop("WorkstationName", None)
    if workstation is not None:
        _sub(doc, "source")["domain"] = workstation
    client = data.get("ClientAddress")
    if client is not None and client not in ("-", "Unknown"):
        _add_related(doc, "ip", "127.0.0.1" if client == "LOCAL" else client)
        del data["ClientAddress"]
    process = doc.get("process")
    if isinstance(process, dict) and "name" not in process and \
            isinstance(process.get("executable"), str):
        process["name"] = _name_of(process["executable"])


def _connection(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    for field, side in (("DestAddress", "destination"), ("SourceAddress", "source")):
        value = data.get(field)
        if value is not None and value != "-":
            _sub(doc, side)["ip"] = value
            _add_related(doc, "ip", value)
            del data[field]
    for field, side in (("DestPort", "destination"), ("SourcePort", "source")):
        value = data.get(field)
        if isinstance(value, str) and value != "-" and (number := _decode_long(value)) is not None:
            _sub(doc, side)["port"] = number
            del data[field]
    protocol = data.get("Protocol")
    if protocol is not None and protocol != "-":
        network = _sub(doc, "network")
        network["iana_number"] = protocol
        if protocol in IANA_TRANSPORTS:
            network["transport"] = IANA_TRANSPORTS[protocol]
    application = data.get("Application")
    if application is not None and application != "-":
        process = _sub(doc, "process")
        process["executable"] = data.pop("Application")
        process.setdefault("name", _name_of(process["executable"]))


def _process(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    process = _sub(doc, "process")
    pid = data.get("NewProcessId")
    if isinstance(pid, str) and (value := _decode_long(pid)) is not None:
        process["pid"] = value
        del data["NewProcessId"]
    if data.get("NewProcessName") is not None:
        process["executable"] = data.pop("NewProcessName")
    if data.get("ParentProcessName") is not None:
        _sub(process, "parent")["executable"] = data.pop("ParentProcessName")
    if "name" not in process and isinstance(process.get("executable"), str):
        process["name"] = _name_of(process["executable"])
    parent = process.get("parent")
    if isinstance(parent, dict) and "name" not in parent and \
            isinstance(parent.get("executable"), str):
        parent["name"] = _name_of(parent["executable"])
    parent_pid = data.get("ProcessId")
    if isinstance(parent_pid, str) and (value := _decode_long(parent_pid)) is not None:
        _sub(process, "parent")["pid"] = value
    command_line = data.get("CommandLine")
    if isinstance(command_line, str):
        process["args"] = split_command_line(command_line)
        process["command_line"] = command_line
    if not process:
        del doc["process"]


def _related_subject(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    name = data.get("SubjectUserName")
    if name is not None and name != "-":
        _add_related(doc, "user", name)


def _related_target(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    name = data.get("TargetUserName")
    if name is not None and name != "-":
        _add_related(doc, "user", name)


def _privileges(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    privileges = data.get("PrivilegeList")
    if isinstance(privileges, str):
        data["PrivilegeList"] = privileges.split()


def _renamed_user(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    old = data.get("OldTargetUserName")
    new = data.get("NewTargetUserName")
    if old:
        _sub(_sub(doc, "user"), "target")["name"] = old
    if new:
        _sub(_sub(doc, "user"), "changes")["name"] = new
    for name in (new, old):
        if name is not None and name != "-":
            _add_related(doc, "user", name)


def _object(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    name = data.get("ObjectName", data.get("FileName"))
    if isinstance(name, str) and name:
        _sub(doc, "file")["path"] = name


def _share(doc: Doc, winlog: Doc, data: dict[str, Any], code: str) -> None:
    file: Doc = {}
    name = data.get("RelativeTargetName")
    directory = data.get("ShareLocalPath")
    if name:
        file["name"] = name
    if directory:
        file["directory"] = directory
    if name and directory:
        file["path"] = f"{directory}\\{name}"
    share = data.get("ShareName")
    if share and name:
        file["target_path"] = f"{share}\\{name}"
    if name and "." in name:
        file["extension"] = name[name.rfind(".") + 1:]
    if file:
        _sub(doc, "file").update(file)


# (step name or None for "every event", function), in pipeline order.
STEPS: tuple[tuple[str | None, Step], ...] = (
    (None, _logon_type),
    (None, _uac),
    ("kerberos", _kerberos),
    (None, _service),
    (None, _failure_reason),
    ("failure", _failure_status),
    ("session", _session),
    ("target", _target_user),
    ("member", _member),
    ("computer", _computer),
    ("logon_target", _logon_target),
    ("subject", _subject_user),
    ("to_target", _to_target),
    ("effective", _effective),
    ("userdata", _user_data_subject),
    (None, _subject_logon),
    ("auth", _auth),
    ("connection", _connection),
    ("process", _process),
    ("rel_subject", _related_subject),
    ("rel_target", _related_target),
    ("privileges", _privileges),
    (None, _renamed_user),
    ("share", _share),
    ("object", _object),
)
_KNOWN_STEPS = {name for name, _ in STEPS if name}
assert all(spec.steps <= _KNOWN_STEPS for spec in EVENTS.values()), "unknown step in _TABLE"


_STEP_LISTS: dict[frozenset[str], tuple[Step, ...]] = {}


def _steps_of(spec: EventSpec) -> tuple[Step, ...]:
    """The steps that run for ``spec``, in pipeline order (computed once per step set)."""
    steps = _STEP_LISTS.get(spec.steps)
    if steps is None:
        steps = _STEP_LISTS[spec.steps] = tuple(
            step for name, step in STEPS if name is None or name in spec.steps)
    return steps


def apply_security_pipeline(doc: Doc) -> None:
    """Enrich ``doc`` (a base document of a Security-channel event) in place."""
    event = doc["event"]
    winlog = doc["winlog"]
    code: str = event["code"]
    spec = EVENTS.get(code, _NO_SPEC)
    if spec.action is not None:
        event["action"] = spec.action
    if spec.category:
        event["category"] = list(spec.category)
        event["type"] = list(spec.type)
    data = winlog.get("event_data")
    if not isinstance(data, dict):
        data = {}
    for step in _steps_of(spec):
        step(doc, winlog, data, code)
    if code in ("4698", "4699", "4700", "4701", "4702") and data.get("TaskName"):
        _sub(winlog, "scheduled_task")["name"] = data["TaskName"]
    finish_security(doc, winlog, data)


def finish_security(doc: Doc, winlog: Doc, data: dict[str, Any]) -> None:
    """The common tail (security_common.yml): IPv4-mapped source.ip, related.ip."""
    source = doc.get("source")
    if isinstance(source, dict) and isinstance(source.get("ip"), str):
        match = _MAPPED_IPV4.match(source["ip"])
        if match:
            source["ip"] = match.group(1)
        if source["ip"] != "-":
            _add_related(doc, "ip", source["ip"])
    if "event_data" in winlog and not data:
        del winlog["event_data"]
