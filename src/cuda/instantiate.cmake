# lvsa_cuda_instantiate(<table> <array> <spec>...): the one generator of kernel instantiations.
#
#   <spec>  family:dtype:head_dim:tile_n                  the family's shipped schedule at that
#                                                         key-tile width
#           family:dtype:head_dim:tile_n:no-pairs         the same without the frame-pair code
#                                                         (sm90 kNoFramePairs: for launches whose
#                                                         query tiles hold one frame each)
#           family:dtype:head_dim:tile_n:flags:label      a schedule variant (Traits arguments)
#   family sm80 | sm90, dtype bf16 | fp16, or e4m3/<16-bit dtype> | s8/<16-bit dtype> (sm90:
#   quantised scores, Q and K in e4m3 or int8, V and O in the 16-bit type), or
#   <scores>.e4m3/<16-bit dtype> (sm90: quantised scores and fp8 values, V in e4m3 too).
#
# Writes, under ${CMAKE_CURRENT_BINARY_DIR}/generated/, one source per spec (from
# instantiation.cu.in, so every instantiation compiles as its own unit) and <table>_kernels.hpp,
# which declares their launchers and lists them in the KernelEntry array <array>
# (common/kernel_table.hpp) in spec order. Sets <table>_<family>_sources in the caller's scope
# for each family, since each family is compiled for its own architectures.
set(LVSA_CUDA_SOURCE_DIR ${CMAKE_CURRENT_LIST_DIR})

function(lvsa_cuda_instantiate table array)
  set(declarations "")
  set(rows "")
  set(families "")
  foreach(spec IN LISTS ARGN)
    string(REPLACE ":" ";" fields "${spec}")
    list(LENGTH fields nfields)
    if(NOT (nfields EQUAL 4 OR nfields EQUAL 6 OR (nfields EQUAL 5 AND spec MATCHES ":no-pairs$")))
      message(FATAL_ERROR "lvsa_cuda_instantiate: '${spec}' is not family:dtype:head_dim:tile_n[:no-pairs|:flags:label]")
    endif()
    list(GET fields 0 FAMILY)
    list(GET fields 1 dtype)
    list(GET fields 2 head_dim)
    set(score_enum "")
    set(value_enum "")
    if(dtype MATCHES "^(e4m3|s8)(\\.e4m3)?/(.*)$")
      set(scores ${CMAKE_MATCH_1})
      if(CMAKE_MATCH_2)
        set(value_enum E4M3)
        set(scores ${scores}.e4m3)
      endif()
      set(dtype ${CMAKE_MATCH_3})
      if(scores MATCHES "^e4m3")
        set(score_enum E4M3)
        set(score_elem __nv_fp8_e4m3)
      else()
        set(score_enum I8)
        set(score_elem int8_t)
      endif()
      if(NOT FAMILY STREQUAL "sm90")
        message(FATAL_ERROR "lvsa_cuda_instantiate: quantised scores in '${spec}' are an sm90 schedule")
      endif()
    endif()
    if(FAMILY STREQUAL "sm80")
      set(family_enum Sm80)
    elseif(FAMILY STREQUAL "sm90")
      set(family_enum Sm90)
    else()
      message(FATAL_ERROR "lvsa_cuda_instantiate: family '${FAMILY}' in '${spec}' is not sm80 or sm90")
    endif()
    if(dtype STREQUAL "bf16")
      set(elem __nv_bfloat16)
      set(dtype_enum BF16)
    elseif(dtype STREQUAL "fp16")
      set(elem __half)
      set(dtype_enum F16)
    else()
      message(FATAL_ERROR "lvsa_cuda_instantiate: dtype '${dtype}' in '${spec}' is not bf16 or fp16")
    endif()
    list(GET fields 3 tile_n)
    set(unit ${table}_${FAMILY}_${dtype}_d${head_dim}_n${tile_n})
    set(TRAITS "${elem}, ${head_dim}, ${tile_n}")
    set(name "${FAMILY} ${dtype} d${head_dim} n${tile_n}")
    set(flags "")
    set(frame_pairs true)
    set(spanning false)
    if(FAMILY STREQUAL "sm90" AND NOT score_enum AND head_dim EQUAL 64)  # kDefaultFlags has kSpanTiles
      set(spanning true)
    endif()
    if(nfields EQUAL 5)
      if(NOT FAMILY STREQUAL "sm90" OR score_enum)
        message(FATAL_ERROR "lvsa_cuda_instantiate: '${spec}': no-pairs kernels are 16-bit sm90 schedules")
      endif()
      set(frame_pairs false)
      set(spanning false)  # dense plans: one merged interval, nothing to span
      string(APPEND unit _nopairs)
      string(APPEND TRAITS ", (sm90::kDefaultFlags<${head_dim}> & ~sm90::kSpanTiles) | sm90::kNoFramePairs")
      string(APPEND name " no-pairs")
    elseif(nfields EQUAL 6)
      list(GET fields 4 flags)
      list(GET fields 5 name)
      string(APPEND unit _f${flags})
      string(APPEND TRAITS ", ${flags}")
      # sm90 kNoFramePairs = 16384, kSpanTiles = 32768 (kernel_traits.cuh)
      math(EXPR no_pairs "(${flags} >> 14) & 1")
      math(EXPR span "(${flags} >> 15) & 1")
      if(FAMILY STREQUAL "sm90" AND no_pairs)
        set(frame_pairs false)
      endif()
      set(spanning false)
      if(FAMILY STREQUAL "sm90" AND span)
        set(spanning true)
      endif()
    endif()
    if(score_enum)
      if(NOT flags)  # Traits' score type follows its flags: spell out the default for 8-bit scores
        string(APPEND TRAITS ", ${FAMILY}::kDefaultFlags<${head_dim}, 1>")
        set(name "${FAMILY} ${scores}/${dtype} d${head_dim} n${tile_n}")
      endif()
      string(APPEND TRAITS ", ${score_elem}")
      string(REPLACE "." "_" scores_unit "${scores}")
      string(APPEND unit _${scores_unit})
      if(value_enum)
        string(APPEND TRAITS ", __nv_fp8_e4m3")
      endif()
    else()
      set(score_enum ${dtype_enum})
    endif()
    if(NOT value_enum)
      set(value_enum ${dtype_enum})
    endif()
    set(LAUNCHER launch_${unit})
    set(source ${CMAKE_CURRENT_BINARY_DIR}/generated/${unit}.cu)
    configure_file(${LVSA_CUDA_SOURCE_DIR}/instantiation.cu.in ${source} @ONLY)
    list(APPEND ${table}_${FAMILY}_sources ${source})
    list(APPEND families ${FAMILY})
    string(APPEND declarations "void ${LAUNCHER}(const FwdParams& p, void* stream);\n")
    string(APPEND rows "    {Family::${family_enum}, DType::${dtype_enum}, DType::${score_enum}, DType::${value_enum}, ${head_dim}, ${tile_n}, ${frame_pairs}, ${spanning}, \"${name}\", ${LAUNCHER}},\n")
  endforeach()
  file(RELATIVE_PATH list_file ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_LIST_FILE})
  file(CONFIGURE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/generated/${table}_kernels.hpp @ONLY CONTENT [=[
// Generated by src/cuda/instantiate.cmake from the list in @list_file@: do not edit.
#pragma once

#include "common/kernel_table.hpp"

namespace lvsa::cuda {

@declarations@
inline constexpr KernelEntry @array@[] = {
@rows@};

}  // namespace lvsa::cuda
]=])
  list(REMOVE_DUPLICATES families)
  foreach(family IN LISTS families)
    set(${table}_${family}_sources ${${table}_${family}_sources} PARENT_SCOPE)
  endforeach()
endfunction()
