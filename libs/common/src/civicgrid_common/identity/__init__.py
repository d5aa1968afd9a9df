"""Identity: who is calling (Principal), what they may do (roles), where (jurisdictions)."""
from civicgrid_common.identity.principal import (
    JURISDICTION_LENGTHS,
    InvalidPrincipal,
    Principal,
    Role,
    covers,
    validate_jurisdiction,
)
from civicgrid_common.identity.tokens import InvalidToken, JwksUnavailable, TokenVerifier, mint_token

__all__ = [
    "JURISDICTION_LENGTHS", "InvalidPrincipal", "InvalidToken", "JwksUnavailable", "Principal", "Role",
    "TokenVerifier", "covers", "mint_token", "validate_jurisdiction",
]
