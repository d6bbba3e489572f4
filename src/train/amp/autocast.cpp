// Autocast control for scintigan: libtorch's per-device autocast switch and
// reduced type, which tch 0.26 exposes only for CUDA and only as float16.
//
// libtorch's autocast functions are declared here rather than through
// <ATen/autocast_mode.h>, which pulls in all of ATen and would add a minute
// to every clean build; the declarations are the ones libtorch exports
// (c10::DeviceType and c10::ScalarType are int8_t enums). The entry points
// are noexcept: should libtorch ever throw in them, the process aborts
// instead of unwinding into Rust.
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include <cstdint>

namespace at {
namespace autocast {
bool is_autocast_enabled(c10::DeviceType device_type);
void set_autocast_enabled(c10::DeviceType device_type, bool enabled);
c10::ScalarType get_autocast_dtype(c10::DeviceType device_type);
void set_autocast_dtype(c10::DeviceType device_type, c10::ScalarType dtype);
int increment_nesting();
int decrement_nesting();
void clear_cache();
}  // namespace autocast
}  // namespace at

namespace {
c10::DeviceType device_of(bool cuda) {
  return cuda ? c10::DeviceType::CUDA : c10::DeviceType::CPU;
}
}  // namespace

extern "C" {

// What an autocast region replaces, to be put back when it ends.
struct ScintiganAutocastState {
  bool enabled;
  int8_t dtype;
};

// Start an autocast region on the CPU or CUDA with bfloat16 (`half` false)
// or float16 (`half` true) as the reduced type.
ScintiganAutocastState scintigan_autocast_enter(bool cuda, bool half) noexcept {
  const auto device = device_of(cuda);
  const auto reduced = half ? c10::ScalarType::Half : c10::ScalarType::BFloat16;
  const auto outer = at::autocast::get_autocast_dtype(device);
  ScintiganAutocastState previous{at::autocast::is_autocast_enabled(device),
                                  static_cast<int8_t>(outer)};
  // The cast cache is keyed by weight, not by type: casts an enclosing
  // region of another type made must not be reused here.
  if (previous.enabled && outer != reduced) {
    at::autocast::clear_cache();
  }
  at::autocast::set_autocast_dtype(device, reduced);
  at::autocast::set_autocast_enabled(device, true);
  at::autocast::increment_nesting();
  return previous;
}

// End the region `scintigan_autocast_enter` started; the cast cache is
// dropped when the outermost region ends, as torch.autocast does, and when
// the enclosing region casts to another type.
void scintigan_autocast_exit(bool cuda, ScintiganAutocastState previous) noexcept {
  const auto device = device_of(cuda);
  const bool other_type =
      static_cast<int8_t>(at::autocast::get_autocast_dtype(device)) != previous.dtype;
  if (at::autocast::decrement_nesting() == 0 || (previous.enabled && other_type)) {
    at::autocast::clear_cache();
  }
  at::autocast::set_autocast_enabled(device, previous.enabled);
  at::autocast::set_autocast_dtype(
      device, static_cast<c10::ScalarType>(previous.dtype));
}

bool scintigan_autocast_is_enabled(bool cuda) noexcept {
  return at::autocast::is_autocast_enabled(device_of(cuda));
}

}  // extern "C"
