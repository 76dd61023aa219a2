# Writes OUTPUT, a C++ file defining berth::runtime::kExecStub with the bytes of INPUT.
file(READ "${INPUT}" _hex HEX)
string(LENGTH "${_hex}" _len)
math(EXPR _size "${_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _bytes "${_hex}")
file(WRITE "${OUTPUT}" "// Generated from exec_stub.c by embed.cmake: do not edit.\n#include \"runtime/exec_stub.h\"\nnamespace berth::runtime {\nalignas(16) const unsigned char kExecStub[${_size}] = {${_bytes}};\nconst unsigned long kExecStubSize = ${_size};\n}  // namespace berth::runtime\n")
