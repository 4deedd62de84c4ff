// Reading the body of an OpenAI-compatible chat completion (src/explain/llm_openai.cpp sends the
// request). Separate from the client so that it can be tested and fuzzed without a network.
#pragma once
#include <string>

namespace asdcap::explain_detail {

// choices[0].message.content of `body`, cleaned by clean_answer (asdcap/llm.hpp); the model the
// server reports goes to *model when the body names one. Throws FormatError when the body is not
// JSON, has no such string, or the cleaned answer is empty.
std::string parse_chat_completion(const std::string& body, std::string* model);

}  // namespace asdcap::explain_detail
