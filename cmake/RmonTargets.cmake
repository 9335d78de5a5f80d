# Shared compile settings: warnings (errors with RMON_WERROR) and the
# sanitizer switches. Every target of this project calls rmon_target_defaults()
# once.

if(RMON_SANITIZE AND RMON_TSAN)
  message(FATAL_ERROR "RMON_SANITIZE and RMON_TSAN cannot be combined")
endif()

function(rmon_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  # Clang checks the lock annotations (ABSL_GUARDED_BY and friends).
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    target_compile_options(${target} PRIVATE -Wthread-safety)
  endif()
  if(RMON_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(RMON_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  elseif(RMON_TSAN)
    target_compile_options(${target} PRIVATE -fsanitize=thread -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  endif()
endfunction()
