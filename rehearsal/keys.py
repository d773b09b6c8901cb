"""Throwaway RSA keys for Snowflake key-pair connections to stand-ins: made per run, never stored."""

from __future__ import annotations


def throwaway_pem() -> str:
    """A fresh unencrypted PKCS#8 PEM private key, as a Snowflake key-pair connection holds."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
