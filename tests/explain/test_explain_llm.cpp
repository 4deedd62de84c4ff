// The OpenAI-compatible client against a loopback fake server: request format, retries with
// backoff on 429/5xx/timeouts (Retry-After honoured), clear errors on 4xx and malformed bodies,
// and the API key never appearing in an error message.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "asdcap/error.hpp"
#include "asdcap/llm.hpp"
#include "fake_llm_server.hpp"

using namespace asdcap;
using asdcap::test::FakeLlmServer;

namespace {

const std::string kKey = "sk-test-SECRET-0123456789abcdef";

LlmOptions fast_options(const FakeLlmServer& server) {
  LlmOptions o;
  o.base_url = server.base_url();
  o.api_key = kKey;
  o.model = "fake-model";
  o.connect_timeout_s = 1;
  o.timeout_s = 0.3;
  o.max_retries = 2;
  o.backoff_s = 0.01;
  o.max_backoff_s = 0.05;
  return o;
}

std::string error_of(const OpenAiClient& client, const std::string& prompt) {
  try {
    client.complete(prompt);
  } catch (const NetworkError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no NetworkError";
  return "";
}

// client.complete(prompt), with the seconds it took in `seconds`.
LlmReply timed_complete(const OpenAiClient& client, const std::string& prompt, double& seconds) {
  const auto start = std::chrono::steady_clock::now();
  LlmReply reply = client.complete(prompt);
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return reply;
}

}  // namespace

TEST(ExplainLlm, SendsOneUserMessageAndReadsTheAnswer) {
  FakeLlmServer server([](const httplib::Request&, httplib::Response& res, int, FakeLlmServer&) {
    res.set_content(FakeLlmServer::completion("  This sound is louder.\n", "fake-model-2024"), "application/json");
  });
  LlmOptions o = fast_options(server);
  o.base_url += "/";  // a trailing slash is tolerated
  const OpenAiClient client(o);
  EXPECT_EQ(client.endpoint(), server.base_url() + "/chat/completions");
  const std::string prompt = "Begin your answer with \"This sound is\".\nline 2, ünïcode";
  const LlmReply reply = client.complete(prompt);
  EXPECT_EQ(reply.answer, "This sound is louder.");
  EXPECT_EQ(reply.model, "fake-model-2024");
  EXPECT_EQ(reply.attempts, 1);
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].path, "/v1/chat/completions");
  EXPECT_EQ(reqs[0].authorization, "Bearer " + kKey);
  const auto body = nlohmann::json::parse(reqs[0].body);
  EXPECT_EQ(body["model"], "fake-model");
  ASSERT_EQ(body["messages"].size(), 1u);
  EXPECT_EQ(body["messages"][0]["role"], "user");
  EXPECT_EQ(body["messages"][0]["content"], prompt);  // byte for byte
  EXPECT_FALSE(body.contains("temperature"));
}

TEST(ExplainLlm, RetriesAfter429HonouringRetryAfter) {
  FakeLlmServer server([](const httplib::Request&, httplib::Response& res, int call, FakeLlmServer&) {
    if (call == 1) {
      res.status = 429;
      res.set_header("Retry-After", "0.3");
      res.set_content(R"({"error":{"message":"Rate limit reached"}})", "application/json");
    } else {
      res.set_content(FakeLlmServer::completion("This sound is fine."), "application/json");
    }
  });
  const OpenAiClient client(fast_options(server));
  double waited = 0;
  const LlmReply reply = timed_complete(client, "p", waited);
  EXPECT_EQ(reply.answer, "This sound is fine.");
  EXPECT_EQ(reply.attempts, 2);
  EXPECT_EQ(server.requests().size(), 2u);
  EXPECT_GE(waited, 0.3);  // Retry-After, not the 0.01-s backoff
}

// Retry-After as an HTTP date two seconds ahead: the client waits until then (at least ~1 s given the
// date's whole-second resolution), not its 0.01-s backoff.
TEST(ExplainLlm, RetryAfterAsHttpDate) {
  FakeLlmServer server([](const httplib::Request&, httplib::Response& res, int call, FakeLlmServer&) {
    if (call == 1) {
      res.status = 503;
      const std::time_t when = std::time(nullptr) + 2;
      std::tm tm{};
      gmtime_r(&when, &tm);
      char date[64];
      std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
      res.set_header("Retry-After", date);
    } else {
      res.set_content(FakeLlmServer::completion("This sound is late."), "application/json");
    }
  });
  const OpenAiClient client(fast_options(server));
  double waited = 0;
  const LlmReply reply = timed_complete(client, "p", waited);
  EXPECT_EQ(reply.answer, "This sound is late.");
  EXPECT_EQ(reply.attempts, 2);
  EXPECT_GE(waited, 0.9);
}

TEST(ExplainLlm, GivesUpAfterBoundedRetriesOn500) {
  FakeLlmServer server([](const httplib::Request&, httplib::Response& res, int, FakeLlmServer&) {
    res.status = 500;
    res.set_content(R"({"error":{"message":"internal"}})", "application/json");
  });
  const OpenAiClient client(fast_options(server));
  const std::string msg = error_of(client, "p");
  EXPECT_EQ(server.requests().size(), 3u);  // 1 + max_retries
  EXPECT_NE(msg.find("gave up after 3 attempts"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HTTP 500"), std::string::npos) << msg;
  EXPECT_NE(msg.find(server.base_url()), std::string::npos) << msg;
}

TEST(ExplainLlm, TimesOutAndRetries) {
  FakeLlmServer server([](const httplib::Request&, httplib::Response& res, int, FakeLlmServer& self) {
    self.hang();
    res.set_content(FakeLlmServer::completion("too late"), "application/json");
  });
  LlmOptions o = fast_options(server);
  o.max_retries = 1;
  const OpenAiClient client(o);
  const std::string msg = error_of(client, "p");
  EXPECT_EQ(server.requests().size(), 2u);
  EXPECT_NE(msg.find("gave up after 2 attempts"), std::string::npos) << msg;
}

TEST(ExplainLlm, MalformedBodiesAreClearErrorsWithoutRetry) {
  for (const std::string& body :
       {std::string("{\"choices\": [ {"), std::string("{\"choices\": []}"),
        std::string("{\"choices\": [{\"message\": {\"content\": 5}}]}"), std::string("<html>")}) {
    FakeLlmServer server([&](const httplib::Request&, httplib::Response& res, int, FakeLlmServer&) {
      res.set_content(body, "application/json");
    });
    const OpenAiClient client(fast_options(server));
    const std::string msg = error_of(client, "p");
    EXPECT_NE(msg.find("malformed chat completion"), std::string::npos) << msg;
    EXPECT_EQ(server.requests().size(), 1u);
  }
}

TEST(ExplainLlm, ClientErrorIsNotRetriedAndNeverShowsTheKey) {
  FakeLlmServer server([](const httplib::Request& req, httplib::Response& res, int, FakeLlmServer&) {
    res.status = 401;
    // Some servers echo the key they received.
    res.set_content(R"({"error":{"message":"Incorrect API key provided: )" +
                        req.get_header_value("Authorization").substr(7) + "\"}}",
                    "application/json");
  });
  const OpenAiClient client(fast_options(server));
  const std::string msg = error_of(client, "p");
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_NE(msg.find("HTTP 401"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Incorrect API key provided"), std::string::npos) << msg;
  EXPECT_EQ(msg.find(kKey), std::string::npos) << msg;
  EXPECT_EQ(msg.find("SECRET"), std::string::npos) << msg;
}

TEST(ExplainLlm, UnreachableServerIsRetriedThenReported) {
  int port;
  {
    FakeLlmServer gone([](const httplib::Request&, httplib::Response&, int, FakeLlmServer&) {});
    port = gone.port();
  }  // closed: connections are refused now
  LlmOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
  o.api_key = kKey;
  o.model = "m";
  o.max_retries = 1;
  o.backoff_s = 0.01;
  const std::string msg = error_of(OpenAiClient(o), "p");
  EXPECT_NE(msg.find("gave up after 2 attempts"), std::string::npos) << msg;
  EXPECT_EQ(msg.find(kKey), std::string::npos);
}

TEST(ExplainLlm, BaseUrlValidation) {
  LlmOptions o;
  o.base_url = "ftp://example.com/v1";
  EXPECT_THROW(OpenAiClient{o}, InvalidArgument);
  o.base_url = "https://user:" + kKey + "@example.com/v1";
  o.api_key = kKey;
  try {
    OpenAiClient{o};
    ADD_FAILURE() << "credentials in the URL accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).find(kKey), std::string::npos);
  }
  o.base_url = "https://api.openai.com/v1";
  EXPECT_EQ(OpenAiClient(o).endpoint(), "https://api.openai.com/v1/chat/completions");
  o.base_url = "http://localhost:11434";
  EXPECT_EQ(OpenAiClient(o).endpoint(), "http://localhost:11434/chat/completions");
}

TEST(ExplainLlm, RedactSecret) {
  EXPECT_EQ(redact_secret("a KEY b KEY", "KEY"), "a [redacted] b [redacted]");
  EXPECT_EQ(redact_secret("nothing", ""), "nothing");
}

// A server that sends its answer one byte at a time, each well within the timeout: the timeout
// bounds the whole attempt, not each read.
TEST(ExplainLlm, TimeoutBoundsTheWholeAttemptAgainstASlowDrip) {
  const std::string body = FakeLlmServer::completion("This sound is slow.");
  FakeLlmServer server([&](const httplib::Request&, httplib::Response& res, int, FakeLlmServer&) {
    res.set_chunked_content_provider("application/json", [&](size_t offset, httplib::DataSink& sink) {
      if (!sink.is_writable()) return false;
      if (offset >= body.size()) {
        sink.done();
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return sink.write(body.data() + offset, 1);
    });
  });
  LlmOptions o = fast_options(server);
  o.timeout_s = 0.5;
  o.max_retries = 0;
  const OpenAiClient client(o);
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = error_of(client, "p");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 2.0);  // the whole body would take about 50 ms x its size
  EXPECT_GT(body.size() * 0.05, 4.0);
  EXPECT_NE(msg.find("no complete answer within the timeout"), std::string::npos) << msg;
}

// An empty answer (once cleaned) and a response over the size cap are failures, not retried.
TEST(ExplainLlm, EmptyOrOversizedAnswersFailWithoutRetry) {
  const std::pair<std::string, std::string> cases[] = {
      {" \n\t \x1b[0m", "the answer is empty"},
      {"This sound is " + std::string(3 << 20, 'a') + ".", "larger than 1048576 bytes"}};
  for (const auto& [content, needle] : cases) {
    FakeLlmServer server([&](const httplib::Request&, httplib::Response& res, int, FakeLlmServer&) {
      res.set_content(FakeLlmServer::completion(content), "application/json");
    });
    LlmOptions o = fast_options(server);
    o.timeout_s = 10;  // sending 3 MB on a loaded machine may take longer than the usual 0.3 s
    const OpenAiClient client(o);
    const std::string msg = error_of(client, "p");
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(server.requests().size(), 1u);
  }
}

TEST(ExplainLlm, ControlCharactersAndEscapesNeverReachTheAnswer) {
  FakeLlmServer server([](const httplib::Request&, httplib::Response& res, int, FakeLlmServer&) {
    res.set_content(
        FakeLlmServer::completion("\x1b[31;1mThis sound is\x07 red\xc2\x9b.\x1b]\r\nNext line\ttab.\x1b[0m"),
        "application/json");
  });
  const OpenAiClient client(fast_options(server));
  EXPECT_EQ(client.complete("p").answer, "This sound is red.\nNext line\ttab.");
  EXPECT_EQ(clean_answer("  ünïcode stays  "), "ünïcode stays");
}

TEST(ExplainLlm, DefaultMaxTokensIsSentAndPartOfTheRequestSettings) {
  FakeLlmServer server([](const httplib::Request&, httplib::Response& res, int, FakeLlmServer&) {
    res.set_content(FakeLlmServer::completion("This sound is fine."), "application/json");
  });
  LlmOptions o = fast_options(server);
  const OpenAiClient client(o);
  client.complete("p");
  EXPECT_EQ(nlohmann::json::parse(server.requests().at(0).body)["max_tokens"], 1024);
  EXPECT_EQ(client.request_settings(), R"({"max_tokens":1024,"model":"fake-model"})");
  o.temperature = 0.5;
  EXPECT_NE(OpenAiClient(o).request_settings(), client.request_settings());
}

// After requests in a row found nothing listening, the next ones do not wait through the retries.
TEST(ExplainLlm, DeadServerFailsFastAfterRepeatedRefusals) {
  int port;
  {
    FakeLlmServer gone([](const httplib::Request&, httplib::Response&, int, FakeLlmServer&) {});
    port = gone.port();
  }
  LlmOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
  o.model = "m";
  o.max_retries = 2;
  o.backoff_s = 0.2;
  const OpenAiClient client(o);
  for (int i = 0; i < o.fail_fast_after; ++i) {
    const std::string msg = error_of(client, "p");
    EXPECT_NE(msg.find("gave up after 3 attempts"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cannot connect"), std::string::npos) << msg;
  }
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = error_of(client, "p");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 0.2);
  EXPECT_NE(msg.find("gave up after 1 attempt,"), std::string::npos) << msg;
}
