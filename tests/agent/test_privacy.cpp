// Secrets never enter a prompt: secret files by name, secret-looking text masked.
#include <catch2/catch.hpp>

#include "agent/privacy.h"

using namespace ponder::agent;

TEST_CASE("privacy: secret files by name", "[agent][privacy]") {
  for (const char* p : {".env", "app/.env.local", ".env.production", "certs/server.pem", "tls.key", "home/.ssh/id_rsa",
                        "id_ed25519", "C:\\keys\\store.p12", ".netrc", "deploy/credentials.json", ".git-credentials",
                        "config/secrets.yaml", "a/.npmrc", "release.keystore"})
    CHECK(is_secret_file(p));
  for (const char* p : {".env.example", ".env.sample", "src/env.cpp", "id_rsa.pub", "keyboard.c", "monkey.py",
                        "credentials_test.go", "docs/secrets.md", "README.md"})
    CHECK_FALSE(is_secret_file(p));
}

TEST_CASE("privacy: secret-looking text is masked, code around it kept", "[agent][privacy]") {
  std::size_t n = 0;
  const std::string key =
      "x = 1\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabcdef\n-----END RSA PRIVATE KEY-----\ny = 2\n";
  CHECK(mask_secrets(key, &n) == "x = 1\n[secret masked]\ny = 2\n");
  CHECK(n == 1);
  // A block cut off before its END: masked to the end.
  CHECK(mask_secrets("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n", &n) == "[secret masked]\n");
  const std::string tokens =
      "aws = AKIAIOSFODNN7EXAMPLE\n"
      "gh: ghp_1234567890abcdefghijklmnopqrstuvwxyzAB\n"
      "openai_key = sk-proj-abcdefghijklmnopqrstuvwx\n"
      "slack(xoxb-123456789012-abcdefghij)\n"
      "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\n";
  CHECK(mask_secrets(tokens, &n) ==
        "aws = [secret masked]\n"
        "gh: [secret masked]\n"
        "openai_key = [secret masked]\n"
        "slack([secret masked])\n"
        "jwt [secret masked]\n");
  CHECK(n == 5);
  CHECK(mask_secrets("db_password = \"hunter2hunter2\"  # prod\nAPI_TOKEN: 'abcd1234efgh'\n", &n) ==
        "db_password = \"[secret masked]\"  # prod\nAPI_TOKEN: '[secret masked]'\n");
  CHECK(n == 2);
  // Not secrets: short values, placeholders, comparisons, ordinary code and words.
  const std::string plain =
      "if (password == \"\") return;\n"
      "password = \"short\"\n"
      "token = \"${TOKEN_FROM_ENV}\"\n"
      "secret: \"<your secret here>\"\n"
      "let task = sk-1;  // ask-for-more\n"
      "AKIA is a prefix\n"
      "const desk_lamp = 3;\n";
  CHECK(mask_secrets(plain, &n) == plain);
  CHECK(n == 0);
}
