#pragma once
// What never goes into a prompt: files that hold secrets by their name, and lines of other files
// that look like secrets (masked, so that the code around them still reads).
//
// Secret files: .env and .env.* (not the .env.example / .env.sample / .env.template kind that
// documents the variables), *.pem, *.key, *.p12, *.pfx, *.keystore, *.jks, id_rsa / id_dsa /
// id_ecdsa / id_ed25519 (not their .pub: public keys are not secret), .netrc, .pgpass,
// .npmrc, .pypirc, credentials / credentials.json, .git-credentials, secrets.* (yaml, json, toml).
// Secret-looking text: private-key blocks (BEGIN ... PRIVATE KEY ... END), and the token formats
// of the common services (AWS access keys, GitHub, GitLab, Slack, Stripe, OpenAI, Anthropic,
// Google API keys, JWTs), and `password = "..."`-style assignments with a literal value.
#include <cstddef>
#include <string>
#include <string_view>

namespace ponder::agent {

/// True when the file's name says it holds secrets (`path` relative or absolute, / or \).
bool is_secret_file(std::string_view path);

/// `text` with every secret-looking span replaced by "[secret masked]" (a private-key block
/// becomes one such line); `masked` receives how many spans were replaced.
std::string mask_secrets(std::string_view text, std::size_t* masked = nullptr);

}  // namespace ponder::agent
