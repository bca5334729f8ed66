#!/usr/bin/env python3
"""Test TLS provider: a CA kept in the leader's unit directory, every CSR signed with it.

Leader only (as the library's provider acts): on relation events, update-status and
config-changed it answers outstanding requests; `rotate-ca` makes a new CA, revokes all
certificates (the library's `revoke_all_certificates`) and signs every request again.
"""

import datetime
import json
import pathlib
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

import ops
from charmlibs.interfaces.tls_certificates import (
    Certificate,
    PrivateKey,
    ProviderCertificate,
    TLSCertificatesProvidesV4,
    generate_ca,
    generate_certificate,
    generate_private_key,
)

STATE = pathlib.Path("ca-state.json")


def sign_under_intermediate(csr, signer, signer_key, validity):
    """A leaf signed by an intermediate CA, with the intermediate's name as its issuer.

    charmlibs-interfaces-tls-certificates 1.12.0 cannot do this: `Certificate.generate` writes
    the signing CA's *issuer* as the leaf's issuer ("TODO: Validate this is correct"), which is
    right only for a self-signed CA. Under an intermediate the chain is then broken (the charm
    refuses such a certificate: not signed by the CA), so the test provider signs these itself.
    """
    req = x509.load_pem_x509_csr(str(csr).encode())
    ca = x509.load_pem_x509_certificate(str(signer).encode())
    key = serialization.load_pem_private_key(str(signer_key).encode(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(req.subject)
        .issuer_name(ca.subject)
        .public_key(req.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    try:
        san = req.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        b = b.add_extension(san.value, critical=False)
    except x509.ExtensionNotFound:
        pass
    pem = b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    return Certificate.from_string(pem.strip())


class TlsProvider(ops.CharmBase):
    def __init__(self, framework):
        super().__init__(framework)
        self.certificates = TLSCertificatesProvidesV4(self, "certificates")
        for e in (
            self.on.certificates_relation_joined,
            self.on.certificates_relation_changed,
            self.on.update_status,
            self.on.config_changed,
            self.on.leader_elected,
        ):
            framework.observe(e, self._answer)
        framework.observe(self.on.rotate_ca_action, self._rotate)

    def _ca(self, fresh=False):
        """(signing CA, its key, chain above the leaf, root) made once, kept in a file."""
        cn = str(self.config["ca-common-name"])
        inter = bool(self.config["intermediate"])
        state = json.loads(STATE.read_text()) if STATE.exists() else {}
        if fresh or state.get("cn") != cn or state.get("intermediate") != inter:
            n = state.get("generation", 0) + 1
            root_key = generate_private_key()
            root = generate_ca(root_key, timedelta(days=365), f"{cn} {n}")
            state = {"cn": cn, "intermediate": inter, "generation": n,
                     "root": str(root), "root_key": str(root_key)}
            if inter:
                from charmlibs.interfaces.tls_certificates import generate_csr
                ikey = generate_private_key()
                icsr = generate_csr(ikey, common_name=f"{cn} intermediate {n}")
                icert = generate_certificate(icsr, root, root_key, timedelta(days=365), is_ca=True)
                state["inter"], state["inter_key"] = str(icert), str(ikey)
            STATE.write_text(json.dumps(state))
            STATE.chmod(0o600)
        root = Certificate.from_string(state["root"])
        if "inter" in state:
            return (Certificate.from_string(state["inter"]),
                    PrivateKey.from_string(state["inter_key"]),
                    [Certificate.from_string(state["inter"]), root], root)
        return root, PrivateKey.from_string(state["root_key"]), [root], root

    def _answer(self, _event=None):
        if not self.unit.is_leader():
            return
        signer, key, above, root = self._ca()
        validity = timedelta(minutes=int(self.config["validity-minutes"]))
        for req in self.certificates.get_outstanding_certificate_requests():
            if len(above) > 1:
                cert = sign_under_intermediate(req.certificate_signing_request, signer, key, validity)
            else:
                cert = generate_certificate(req.certificate_signing_request, signer, key, validity)
            self.certificates.set_relation_certificate(ProviderCertificate(
                relation_id=req.relation_id,
                certificate=cert,
                certificate_signing_request=req.certificate_signing_request,
                ca=root,
                chain=[cert, *above],
            ))
        self.unit.status = ops.ActiveStatus(f"CA {root.common_name}")

    def _rotate(self, event):
        if not self.unit.is_leader():
            event.fail("only the leader holds the CA")
            return
        self._ca(fresh=True)
        self.certificates.revoke_all_certificates()
        self._answer()
        event.set_results({"ca": self._ca()[3].common_name})


if __name__ == "__main__":
    ops.main(TlsProvider)
