#include "unpickler.hpp"

#include <bit>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "asdcap/error.hpp"

namespace asdcap::modelio {
namespace {

// BigInt: an integer wider than 64 bits (its little-endian two's complement bytes in `s`).
// Opaque: what an unresolved data-only global (numpy.*, _codecs.encode) would have built.
enum class Kind : uint8_t {
  None,
  Bool,
  Int,
  BigInt,
  Float,
  Str,
  Bytes,
  Tuple,
  List,
  Dict,
  Global,
  Storage,
  Tensor,
  Opaque
};
enum class Callable : uint8_t { OrderedDict, RebuildTensorV2, RebuildParameter, StorageType, Opaque };

// One unpickled object. Objects live in an arena and refer to each other by index, so shared
// references (memo) and even cycles cost nothing and free nothing twice.
struct Obj {
  Kind kind = Kind::None;
  Callable callable = Callable::OrderedDict;  // Global
  DType dtype = DType::F32;                   // Global StorageType, Storage
  int64_t i = 0;                              // Int, Bool; Storage numel; Tensor index
  double f = 0;
  std::string s;                // Str, Bytes, BigInt; Storage key; Global, Opaque "module.name"
  std::vector<uint32_t> items;  // Tuple, List; Dict as key, value, key, value...
};

constexpr int kMaxDims = 16;

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const std::string& file)
      : begin_(data), p_(data), end_(data + size), file_(file) {}

  uint32_t run();
  std::vector<PickledTensor> state_dict(uint32_t root);
  const Obj& obj(uint32_t id) const { return objs_[id]; }
  const Obj* lookup(uint32_t dict, const char* key) const;
  size_t consumed() const { return static_cast<size_t>(p_ - begin_); }
  std::vector<PickledStorage> storages() const { return storages_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(file_ + ": bad checkpoint pickle: " + what);
  }

 private:
  const uint8_t* take(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) fail("truncated");
    const uint8_t* r = p_;
    p_ += n;
    return r;
  }
  uint64_t le(size_t n) {
    const uint8_t* b = take(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(b[k]) << (8 * k);
    return v;
  }
  std::string text(uint64_t n) {
    if (n > static_cast<uint64_t>(end_ - p_)) fail("truncated (a string runs past the end)");
    const uint8_t* b = take(static_cast<size_t>(n));
    return std::string(reinterpret_cast<const char*>(b), static_cast<size_t>(n));
  }
  std::string line() {
    const void* nl = std::memchr(p_, '\n', static_cast<size_t>(end_ - p_));
    if (!nl) fail("unterminated GLOBAL");
    std::string s(reinterpret_cast<const char*>(p_), static_cast<const uint8_t*>(nl) - p_);
    p_ = static_cast<const uint8_t*>(nl) + 1;
    return s;
  }
  uint32_t make(Obj o) {
    if (objs_.size() >= (1u << 28)) fail("too many objects");
    objs_.push_back(std::move(o));
    return static_cast<uint32_t>(objs_.size() - 1);
  }
  uint32_t make_int(int64_t v) {
    Obj o;
    o.kind = Kind::Int;
    o.i = v;
    return make(std::move(o));
  }
  void push(uint32_t id) { stack_.push_back(id); }
  uint32_t pop() {
    if (stack_.size() <= base()) fail("stack underflow");
    uint32_t v = stack_.back();
    stack_.pop_back();
    return v;
  }
  uint32_t top() const {
    if (stack_.size() <= base()) fail("stack underflow");
    return stack_.back();
  }
  size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  // Pops everything above the last MARK and the MARK itself.
  std::vector<uint32_t> pop_mark() {
    if (marks_.empty()) fail("MARK missing");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<uint32_t> v(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return v;
  }
  uint32_t tuple(std::vector<uint32_t> items) {
    Obj o;
    o.kind = Kind::Tuple;
    o.items = std::move(items);
    return make(std::move(o));
  }
  uint32_t global(const std::string& module, const std::string& name);
  uint32_t persistent_load(uint32_t pid);
  uint32_t reduce(uint32_t callable, uint32_t args);
  std::vector<int64_t> int_tuple(uint32_t id, const char* what);
  int64_t as_int(uint32_t id, const char* what) {
    if (objs_[id].kind != Kind::Int) fail(std::string(what) + " is not an integer");
    return objs_[id].i;
  }
  void set_items(uint32_t dict, const std::vector<uint32_t>& kv) {
    if (objs_[dict].kind != Kind::Dict) fail("SETITEM(S) on a non-dict");
    if (kv.size() % 2) fail("SETITEMS with an odd number of items");
    auto& it = objs_[dict].items;
    it.insert(it.end(), kv.begin(), kv.end());
  }

  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& file_;
  std::vector<Obj> objs_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, uint32_t> memo_;
  std::vector<PickledTensor> tensors_;
  std::vector<PickledStorage> storages_;
  std::unordered_map<std::string, size_t> storage_index_;
};

// Globals that only ever build data (numpy arrays, dtypes and scalars; _codecs.encode turning a
// latin-1 str into bytes, as protocol 2 pickles bytes). They appear in training state saved next to
// the weights. They are never resolved: REDUCE on them yields an opaque placeholder.
bool data_only_global(const std::string& module, const std::string& name) {
  return module == "numpy" || module.rfind("numpy.", 0) == 0 || (module == "_codecs" && name == "encode");
}

uint32_t Unpickler::global(const std::string& module, const std::string& name) {
  Obj o;
  o.kind = Kind::Global;
  o.s = module + "." + name;
  static const struct {
    const char* name;
    DType dtype;
  } storages[] = {{"FloatStorage", DType::F32},  {"HalfStorage", DType::F16}, {"BFloat16Storage", DType::BF16},
                  {"DoubleStorage", DType::F64}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32}};
  if (module == "collections" && name == "OrderedDict") {
    o.callable = Callable::OrderedDict;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    o.callable = Callable::RebuildTensorV2;
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    o.callable = Callable::RebuildParameter;
  } else if (data_only_global(module, name)) {
    o.callable = Callable::Opaque;
  } else {
    bool found = false;
    if (module == "torch")
      for (const auto& st : storages)
        if (name == st.name) {
          o.callable = Callable::StorageType;
          o.dtype = st.dtype;
          found = true;
        }
    if (!found)
      throw FormatError(file_ + ": checkpoint refers to the Python global '" + o.s +
                        "', which a state dict never needs; refusing to load it (nothing was executed)");
  }
  return make(std::move(o));
}

// torch.save's persistent id: ('storage', <StorageType>, key, location, numel) in zip files; legacy
// files add a sixth item, view_metadata, None unless the storage is a view of another (which
// torch.save has not written since PyTorch 0.4 and is not supported).
uint32_t Unpickler::persistent_load(uint32_t pid) {
  const Obj& t = objs_[pid];
  if (t.kind != Kind::Tuple || (t.items.size() != 5 && t.items.size() != 6))
    fail("unsupported persistent id (expected a 5- or 6-tuple)");
  if (t.items.size() == 6 && objs_[t.items[5]].kind != Kind::None) fail("storage views are not supported");
  const Obj& tag = objs_[t.items[0]];
  const Obj& type = objs_[t.items[1]];
  const Obj& key = objs_[t.items[2]];
  if (tag.kind != Kind::Str || tag.s != "storage") fail("persistent id is not a storage");
  if (type.kind != Kind::Global || type.callable != Callable::StorageType) fail("persistent id without a storage type");
  if (key.kind != Kind::Str || key.s.empty() || key.s.size() > 64 || key.s.find('/') != std::string::npos)
    fail("bad storage key");
  int64_t numel = as_int(t.items[4], "storage size");
  if (numel < 0) fail("negative storage size");
  auto [pos, fresh] = storage_index_.emplace(key.s, storages_.size());
  if (fresh) {
    storages_.push_back({key.s, type.dtype, numel});
  } else if (storages_[pos->second].dtype != type.dtype || storages_[pos->second].numel != numel) {
    fail("storage " + key.s + " is referred to with different types or sizes");
  }
  Obj o;
  o.kind = Kind::Storage;
  o.dtype = type.dtype;
  o.s = key.s;
  o.i = numel;
  return make(std::move(o));
}

std::vector<int64_t> Unpickler::int_tuple(uint32_t id, const char* what) {
  const Obj& t = objs_[id];
  if (t.kind != Kind::Tuple) fail(std::string(what) + " is not a tuple");
  if (t.items.size() > kMaxDims) fail(std::string(what) + " has too many dimensions");
  std::vector<int64_t> v;
  for (uint32_t it : t.items) v.push_back(as_int(it, what));
  return v;
}

uint32_t Unpickler::reduce(uint32_t callable, uint32_t args) {
  const Obj& c = objs_[callable];
  if (c.kind != Kind::Global) fail("REDUCE on something not callable");
  if (objs_[args].kind != Kind::Tuple) fail("REDUCE arguments are not a tuple");
  std::vector<uint32_t> a = objs_[args].items;
  switch (c.callable) {
    case Callable::OrderedDict: {
      if (!a.empty()) fail("OrderedDict with arguments");
      Obj o;
      o.kind = Kind::Dict;
      return make(std::move(o));
    }
    case Callable::RebuildTensorV2: {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() != 6 && a.size() != 7) fail("_rebuild_tensor_v2 with " + std::to_string(a.size()) + " arguments");
      const Obj& st = objs_[a[0]];
      if (st.kind != Kind::Storage) fail("_rebuild_tensor_v2 without a storage");
      PickledTensor t;
      t.dtype = st.dtype;
      t.storage_key = st.s;
      t.storage_numel = st.i;
      t.offset = as_int(a[1], "storage offset");
      t.shape = int_tuple(a[2], "tensor size");
      t.stride = int_tuple(a[3], "tensor stride");
      if (t.shape.size() != t.stride.size()) fail("tensor size and stride differ in length");
      tensors_.push_back(std::move(t));
      Obj o;
      o.kind = Kind::Tensor;
      o.i = static_cast<int64_t>(tensors_.size() - 1);
      return make(std::move(o));
    }
    case Callable::RebuildParameter: {
      // (data, requires_grad, backward_hooks): the parameter is its tensor.
      if (a.size() != 3 || objs_[a[0]].kind != Kind::Tensor) fail("bad _rebuild_parameter call");
      return a[0];
    }
    case Callable::StorageType: fail("storage type '" + c.s + "' called directly");
    case Callable::Opaque: {
      Obj o;
      o.kind = Kind::Opaque;
      o.s = c.s;
      return make(std::move(o));
    }
  }
  fail("unreachable");
}

uint32_t Unpickler::run() {
  for (;;) {
    uint8_t op = *take(1);
    switch (op) {
      case 0x80: {  // PROTO
        uint8_t v = *take(1);
        if (v < 2 || v > 5) fail("unsupported pickle protocol " + std::to_string(v));
        break;
      }
      case 0x95: le(8); break;  // FRAME: framing is only a read-ahead hint
      case '.': {               // STOP
        if (!marks_.empty()) fail("unbalanced MARK at STOP");
        return pop();
      }
      case '(': marks_.push_back(stack_.size()); break;
      case '0': pop(); break;
      case '1': pop_mark(); break;
      case '2': push(top()); break;
      case 'N': push(make(Obj{})); break;
      case 0x88:
      case 0x89: {
        Obj o;
        o.kind = Kind::Bool;
        o.i = op == 0x88;
        push(make(std::move(o)));
        break;
      }
      case 'J': push(make_int(static_cast<int32_t>(le(4)))); break;
      case 'K': push(make_int(static_cast<int64_t>(le(1)))); break;
      case 'M': push(make_int(static_cast<int64_t>(le(2)))); break;
      case 0x8a: {  // LONG1: n-byte little-endian two's complement
        size_t n = *take(1);
        if (n > 8) {  // kept as bytes: only compared (a legacy file's magic number is 80 bits wide)
          Obj o;
          o.kind = Kind::BigInt;
          o.s = text(n);
          push(make(std::move(o)));
          break;
        }
        uint64_t v = n ? le(n) : 0;
        if (n && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        push(make_int(static_cast<int64_t>(v)));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian double
        uint64_t v = 0;
        const uint8_t* b = take(8);
        for (int k = 0; k < 8; ++k) v = (v << 8) | b[k];
        Obj o;
        o.kind = Kind::Float;
        o.f = std::bit_cast<double>(v);
        push(make(std::move(o)));
        break;
      }
      case 'X':
      case 0x8c:
      case 0x8d:
      case 'T':
      case 'U':
      case 'B':
      case 'C':
      case 0x8e: {
        uint64_t n = (op == 0x8c || op == 'U' || op == 'C') ? le(1) : (op == 0x8d || op == 0x8e) ? le(8) : le(4);
        Obj o;
        o.kind = (op == 'B' || op == 'C' || op == 0x8e) ? Kind::Bytes : Kind::Str;
        o.s = text(n);
        push(make(std::move(o)));
        break;
      }
      case '}':
      case ']': {
        Obj o;
        o.kind = op == '}' ? Kind::Dict : Kind::List;
        push(make(std::move(o)));
        break;
      }
      case ')': push(tuple({})); break;
      case 't': push(tuple(pop_mark())); break;
      case 0x85:
      case 0x86:
      case 0x87: {
        size_t n = op - 0x84u;
        if (stack_.size() < base() + n) fail("stack underflow");
        std::vector<uint32_t> v(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push(tuple(std::move(v)));
        break;
      }
      case 'l':
      case 'd': {
        Obj o;
        o.kind = op == 'l' ? Kind::List : Kind::Dict;
        o.items = pop_mark();
        if (op == 'd' && o.items.size() % 2) fail("DICT with an odd number of items");
        push(make(std::move(o)));
        break;
      }
      case 'q': memo_[le(1)] = top(); break;
      case 'r': memo_[le(4)] = top(); break;
      case 0x94: memo_[memo_.size()] = top(); break;
      case 'h':
      case 'j': {
        uint64_t k = op == 'h' ? le(1) : le(4);
        auto it = memo_.find(k);
        if (it == memo_.end()) fail("memo key " + std::to_string(k) + " undefined");
        push(it->second);
        break;
      }
      case 'c': {
        std::string module = line();
        std::string name = line();
        push(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        uint32_t name = pop(), module = pop();
        if (objs_[name].kind != Kind::Str || objs_[module].kind != Kind::Str) fail("STACK_GLOBAL needs two strings");
        push(global(objs_[module].s, objs_[name].s));
        break;
      }
      case 'Q': push(persistent_load(pop())); break;
      case 'R': {
        uint32_t args = pop();
        uint32_t fn = pop();
        push(reduce(fn, args));
        break;
      }
      case 'b':
        pop();
        top();
        break;  // BUILD: object state (e.g. a state dict's _metadata) is not needed
      case 's': {
        uint32_t v = pop(), k = pop();
        set_items(top(), {k, v});
        break;
      }
      case 'u': {
        auto kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case 'a':
      case 'e': {
        std::vector<uint32_t> v = op == 'a' ? std::vector<uint32_t>{pop()} : pop_mark();
        uint32_t list = top();
        if (objs_[list].kind != Kind::List) fail("APPEND(S) on a non-list");
        objs_[list].items.insert(objs_[list].items.end(), v.begin(), v.end());
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported pickle opcode ") + hex + " at byte " + std::to_string(p_ - 1 - begin_));
      }
    }
    if (stack_.size() > (1u << 26)) fail("stack too deep");
  }
}

const Obj* Unpickler::lookup(uint32_t dict, const char* key) const {
  const auto& it = objs_[dict].items;
  for (size_t k = 0; k + 1 < it.size(); k += 2)
    if (objs_[it[k]].kind == Kind::Str && objs_[it[k]].s == key) return &objs_[it[k + 1]];
  return nullptr;
}

std::vector<PickledTensor> Unpickler::state_dict(uint32_t root) {
  if (objs_[root].kind != Kind::Dict) fail("the pickled object is not a dict");
  uint32_t sd = root;
  for (const char* k : {"model", "state_dict"}) {
    const Obj* v = lookup(root, k);
    if (v && v->kind == Kind::Dict) {
      sd = static_cast<uint32_t>(v - objs_.data());
      break;
    }
  }
  std::vector<PickledTensor> out;
  std::unordered_map<std::string, size_t> index;
  const auto& it = objs_[sd].items;
  for (size_t k = 0; k + 1 < it.size(); k += 2) {
    const Obj& key = objs_[it[k]];
    const Obj& val = objs_[it[k + 1]];
    if (key.kind != Kind::Str) fail("state dict key is not a string");
    if (val.kind == Kind::Opaque)
      fail("state dict entry '" + key.s + "' is built by the Python global '" + val.s +
           "', not a tensor (it was not called)");
    if (val.kind != Kind::Tensor) fail("state dict entry '" + key.s + "' is not a tensor");
    PickledTensor t = tensors_[static_cast<size_t>(val.i)];
    t.key = key.s;
    auto [pos, fresh] = index.emplace(key.s, out.size());
    if (fresh)
      out.push_back(std::move(t));
    else
      out[pos->second] = std::move(t);  // Python dict semantics: the last assignment wins
  }
  return out;
}

}  // namespace

std::vector<PickledTensor> unpickle_state_dict(const uint8_t* data, size_t size, const std::string& file) {
  Unpickler u(data, size, file);
  uint32_t root = u.run();
  return u.state_dict(root);
}

UnpickledCheckpoint unpickle_checkpoint(const uint8_t* data, size_t size, const std::string& file) {
  Unpickler u(data, size, file);
  uint32_t root = u.run();
  UnpickledCheckpoint r;
  r.state_dict = u.state_dict(root);
  r.storages = u.storages();
  r.end = u.consumed();
  return r;
}

size_t read_legacy_header(const uint8_t* data, size_t size, const std::string& file) {
  size_t pos = 0;
  {
    // 0x1950a86a20f9469cfc6c, little-endian
    static const char kMagic[] = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
    Unpickler u(data, size, file);
    const Obj& magic = u.obj(u.run());
    if (magic.kind != Kind::BigInt || magic.s != std::string(kMagic, 10))
      throw FormatError(file + ": not a PyTorch checkpoint (legacy torch.save magic number missing)");
    pos += u.consumed();
  }
  {
    Unpickler u(data + pos, size - pos, file);
    const Obj& version = u.obj(u.run());
    if (version.kind != Kind::Int || version.i != 1001)
      throw FormatError(file + ": legacy torch.save protocol version " +
                        (version.kind == Kind::Int ? std::to_string(version.i) : std::string("(not an integer)")) +
                        " is not supported (1001 is)");
    pos += u.consumed();
  }
  {
    Unpickler u(data + pos, size - pos, file);
    const uint32_t info = u.run();
    if (u.obj(info).kind != Kind::Dict) u.fail("sys_info is not a dict");
    const Obj* le = u.lookup(info, "little_endian");
    if (!le || le->kind != Kind::Bool) u.fail("sys_info without little_endian");
    if (!le->i) throw FormatError(file + ": big-endian legacy checkpoints are not supported");
    pos += u.consumed();
  }
  return pos;
}

std::vector<std::string> unpickle_string_list(const uint8_t* data, size_t size, const std::string& file, size_t* end) {
  Unpickler u(data, size, file);
  const Obj& list = u.obj(u.run());
  if (list.kind != Kind::List) u.fail("the storage key list is not a list");
  std::vector<std::string> out;
  out.reserve(list.items.size());
  for (uint32_t it : list.items) {
    if (u.obj(it).kind != Kind::Str) u.fail("a storage key is not a string");
    out.push_back(u.obj(it).s);
  }
  if (end) *end = u.consumed();
  return out;
}

}  // namespace asdcap::modelio
