/* vk_backend.c - the Vulkan backend's registration: the loader is opened at
 * run time through volk, so the binary starts on machines without Vulkan, and
 * devices are enumerated with their type and memory. Compute (shaders in
 * shaders/vulkan) arrives with the Vulkan backend work; until then opening a
 * device says so and the caller stays on the CPU. */
#include <stdio.h>
#include <string.h>

#include <volk.h>

#include "../backend.h"

static VkInstance vk_instance;
static int vk_tried;
static char vk_why[256];

/* Opens the loader and an instance once; NULL with vk_why set when impossible. */
static VkInstance vk_get_instance(void) {
    if (vk_tried) return vk_instance;
    vk_tried = 1;
    if (volkInitialize() != VK_SUCCESS) {
        snprintf(vk_why, sizeof vk_why, "no Vulkan loader found (libvulkan.so.1)");
        return NULL;
    }
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "bitnet",
                             .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
    VkResult r = vkCreateInstance(&ci, NULL, &vk_instance);
    if (r != VK_SUCCESS) {
        snprintf(vk_why, sizeof vk_why, "no Vulkan driver found (vkCreateInstance: %d)", (int)r);
        vk_instance = NULL;
        return NULL;
    }
    volkLoadInstance(vk_instance);
    return vk_instance;
}

static int vk_physical_devices(VkPhysicalDevice *devs, uint32_t cap) {
    VkInstance inst = vk_get_instance();
    if (!inst) return 0;
    uint32_t n = cap;
    if (vkEnumeratePhysicalDevices(inst, &n, devs) < 0) return 0;
    return (int)n;
}

static int vk_device_count(char *why, size_t why_len) {
    VkPhysicalDevice devs[16];
    int n = vk_physical_devices(devs, 16);
    if (n == 0 && why)
        snprintf(why, why_len, "%.200s", vk_why[0] ? vk_why : "no Vulkan device found");
    return n;
}

static bn_status vk_device_info(int device, bn_device_info *info, bn_err *err) {
    VkPhysicalDevice devs[16];
    int n = vk_physical_devices(devs, 16);
    if (device < 0 || device >= n)
        return bn_fail(err, BN_ERR_DEVICE, "vulkan:%d: no such device (%d found)", device, n);
    VkPhysicalDeviceProperties p;
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceProperties(devs[device], &p);
    vkGetPhysicalDeviceMemoryProperties(devs[device], &mp);
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%.127s", p.deviceName);
    info->type = p.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU ? BN_DEVICE_DGPU
                 : p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU        ? BN_DEVICE_CPU
                                                                      : BN_DEVICE_IGPU;
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            info->mem_total += mp.memoryHeaps[i].size;
    info->mem_free = info->mem_total;
    info->unified = p.deviceType != VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
    return BN_OK;
}

static bn_status vk_open(int device, const bn_backend_config *cfg, bn_backend **out, bn_err *err) {
    (void)cfg;
    *out = NULL;
    return bn_fail(err, BN_ERR_UNSUPPORTED,
                   "vulkan:%d: the Vulkan compute kernels are not part of this build yet", device);
}

const bn_backend_ops *bn_backend_vulkan(void) {
    static const bn_backend_ops ops = {
        .name = "vulkan",
        .device_count = vk_device_count,
        .device_info = vk_device_info,
        .open = vk_open,
    };
    return &ops;
}
