# cmake -DINPUT=page.html -DOUTPUT=page.cpp -DNAMESPACE=asdcap::serve -DFUNCTION=name -P embed_text.cmake
# Writes a C++ source defining `std::string NAMESPACE::FUNCTION()` that returns the bytes of INPUT,
# so a page kept as a real file ships inside the binary. Fails if the delimiter occurs in the text.
file(READ "${INPUT}" text)
set(delim "ASDCAP_EMBED")
string(FIND "${text}" ")${delim}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delim}\"")
endif()
# Raw string literals are limited in length by some compilers: emit chunks of at most 8000 bytes.
string(LENGTH "${text}" n)
set(body "")
set(at 0)
while(at LESS n)
  string(SUBSTRING "${text}" ${at} 8000 chunk)
  string(APPEND body "      R\"${delim}(${chunk})${delim}\"\n")
  math(EXPR at "${at} + 8000")
endwhile()
set(out "// Generated from ${INPUT} at build time; edit that file, not this one.\n#include <string>\n\n")
string(APPEND out "namespace ${NAMESPACE} {\n\nstd::string ${FUNCTION}() {\n  static const char kText[] =\n${body}      \"\";\n")
string(APPEND out "  return std::string(kText, sizeof kText - 1);\n}\n\n}  // namespace ${NAMESPACE}\n")
file(WRITE "${OUTPUT}.tmp" "${out}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
