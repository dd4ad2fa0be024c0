//! What clients send: request bodies, each refusing unknown fields, with the rules the
//! server enforces stated as schema constraints for the API description.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::TenantOut;
use crate::control::{Role, TokenScope};
use crate::http::openapi::VaultPathText;

/// JSON has one kind of number: `10.0` is the integer 10 (JSON Schema says so too), so an
/// integer field takes an integral number in any spelling, and refuses a fraction or a
/// value out of its range.
mod whole {
    use serde::{Deserialize, Deserializer, de::Error};

    fn integral<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
        n: serde_json::Number,
    ) -> Result<T, D::Error> {
        let whole = n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        });
        whole
            .and_then(|w| T::try_from(w).ok())
            .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number in range")))
    }

    pub fn number<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
        integral::<D, T>(serde_json::Number::deserialize(d)?)
    }

    pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<serde_json::Number>::deserialize(d)?
            .map(integral::<D, T>)
            .transpose()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupIn {
    #[schema(
        max_length = 254,
        pattern = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@.\x00-\x1f\x7f-\x9f][^\s@\x00-\x1f\x7f-\x9f]*\.[^\s@\x00-\x1f\x7f-\x9f]*[^\s@.\x00-\x1f\x7f-\x9f]$",
        examples("ada@example.com")
    )]
    pub email: String,
    /// Your name (default: empty).
    #[serde(default)]
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$",
        examples("Ada Lovelace")
    )]
    pub name: Option<String>,
    #[schema(min_length = 10, max_length = 256, examples("correct horse battery"))]
    pub password: String,
    /// The new tenant's slug: its name in URLs (`/api/v1/tenants/{slug}`).
    #[schema(
        min_length = 2,
        max_length = 63,
        pattern = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$",
        examples("acme")
    )]
    pub tenant_slug: String,
    /// The tenant's display name (default: the slug).
    #[serde(default)]
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$",
        examples("Ada Lovelace")
    )]
    pub tenant_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginIn {
    #[schema(max_length = 254, examples("ada@example.com"))]
    pub email: String,
    #[schema(max_length = 1024, examples("correct horse battery"))]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordIn {
    /// Your current password, to confirm.
    #[schema(max_length = 1024, examples("correct horse battery"))]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordIn {
    #[schema(max_length = 1024, examples("correct horse battery"))]
    pub current_password: String,
    #[schema(min_length = 10, max_length = 256, examples("correct horse battery"))]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetIn {
    /// The account's address; the answer is the same whether or not it has an account.
    #[schema(
        max_length = 254,
        pattern = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@.\x00-\x1f\x7f-\x9f][^\s@\x00-\x1f\x7f-\x9f]*\.[^\s@\x00-\x1f\x7f-\x9f]*[^\s@.\x00-\x1f\x7f-\x9f]$",
        examples("ada@example.com")
    )]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmResetIn {
    /// The token from the reset message.
    #[schema(max_length = 256, examples("rst_5d41402abc4b2a76b9719d911017c592"))]
    pub token: String,
    #[schema(min_length = 10, max_length = 256, examples("correct horse battery"))]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenIn {
    #[schema(examples("acme"))]
    pub tenant: String,
    pub role: Role,
    #[serde(default)]
    #[schema(examples("backup script"))]
    pub name: Option<String>,
    /// Days until the token stops working (default: never).
    #[serde(default, deserialize_with = "whole::optional")]
    #[schema(minimum = 1, maximum = 3650, examples(90))]
    pub expires_in_days: Option<u32>,
    /// Extra permissions: `["ai-usage"]` for an AI integration's token.
    #[serde(default)]
    pub scopes: Vec<TokenScope>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantIn {
    #[schema(
        min_length = 2,
        max_length = 63,
        pattern = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$",
        examples("acme")
    )]
    pub slug: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        examples("Acme Plumbing")
    )]
    pub name: String,
    /// The owner's e-mail address: an existing account, or someone who is invited.
    #[serde(default)]
    #[schema(max_length = 254, examples("ada@example.com"))]
    pub owner_email: Option<String>,
    /// Storage quota in bytes (default: none).
    #[serde(default, deserialize_with = "whole::optional")]
    #[schema(examples(10_737_418_240_u64))]
    pub quota_bytes: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberIn {
    /// Their e-mail address: an existing account is added at once; anyone else is invited.
    #[schema(
        max_length = 254,
        pattern = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@.\x00-\x1f\x7f-\x9f][^\s@\x00-\x1f\x7f-\x9f]*\.[^\s@\x00-\x1f\x7f-\x9f]*[^\s@.\x00-\x1f\x7f-\x9f]$",
        examples("ada@example.com")
    )]
    pub email: String,
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeMemberIn {
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MkdirIn {
    /// The new directory's vault path (parents are created).
    #[schema(value_type = VaultPathText)]
    pub path: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveIn {
    #[schema(value_type = VaultPathText)]
    pub from: String,
    #[schema(value_type = VaultPathText)]
    pub to: String,
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreIn {
    /// Where to restore (default: where it was).
    #[serde(default)]
    #[schema(value_type = Option<VaultPathText>)]
    pub to: Option<String>,
}

/// A lifecycle request: `restrict`, `unrestrict`, `cancel`, `reactivate`; operators also
/// `delete` (cancel and purge now), `hold` and `release` (legal hold).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleIn {
    #[schema(
        pattern = "^(restrict|unrestrict|cancel|reactivate)$",
        examples("restrict")
    )]
    pub action: String,
}

/// An operator's lifecycle request: a tenant's own actions, and `delete` (cancel and
/// purge now), `hold` and `release` (legal hold).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminLifecycleIn {
    #[schema(
        pattern = "^(restrict|unrestrict|cancel|reactivate|delete|hold|release)$",
        examples("hold")
    )]
    pub action: String,
}

/// A tenant after a lifecycle change; a purge adds its signed receipt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LifecycleOut {
    pub tenant: TenantOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<crate::signing::Signed>,
}

/// An AI integration's report of tokens consumed.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AiUsageIn {
    /// The model's name: 1 to 100 printable characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        examples("gpt-5-mini")
    )]
    pub model: String,
    #[serde(deserialize_with = "whole::number")]
    #[schema(examples(1200))]
    pub input_tokens: u64,
    #[serde(deserialize_with = "whole::number")]
    #[schema(examples(350))]
    pub output_tokens: u64,
}
