//! Tesseract's C API (`capi.h`), opened at run time.
//!
//! The `tesseract` program loads its models afresh on every run, ~0.1 s a model: a
//! quarter of its time on a photographed receipt. Through the library they are loaded
//! once per [`Models`] and kept for every receipt after. The library is opened at run
//! time (`dlopen`) rather than linked, so the product builds without Tesseract's headers
//! and starts without Tesseract, then says what to install.
//!
//! Nothing the compiler can check crosses this boundary: each call sits in its own
//! unsafe block, with what makes it sound beside it.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A `TessBaseAPI*` or an `ETEXT_DESC*`: opaque on this side.
type Handle = *mut c_void;

/// `TessCancelFunc`: asked as words are found whether to give up.
type CancelFunc = unsafe extern "C" fn(*mut c_void, c_int) -> bool;

/// The functions of `capi.h` used here, each with its C signature (`BOOL` is `int`).
struct Functions {
    version: unsafe extern "C" fn() -> *const c_char,
    create: unsafe extern "C" fn() -> Handle,
    delete: unsafe extern "C" fn(Handle),
    set_variable: unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> c_int,
    init: unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> c_int,
    loaded_languages: unsafe extern "C" fn(Handle) -> *mut *mut c_char,
    delete_text_array: unsafe extern "C" fn(*mut *mut c_char),
    set_page_seg_mode: unsafe extern "C" fn(Handle, c_int),
    set_image: unsafe extern "C" fn(Handle, *const u8, c_int, c_int, c_int, c_int),
    recognize: unsafe extern "C" fn(Handle, Handle) -> c_int,
    tsv_text: unsafe extern "C" fn(Handle, c_int) -> *mut c_char,
    delete_text: unsafe extern "C" fn(*const c_char),
    clear: unsafe extern "C" fn(Handle),
    monitor_create: unsafe extern "C" fn() -> Handle,
    monitor_delete: unsafe extern "C" fn(Handle),
    monitor_set_cancel_func: unsafe extern "C" fn(Handle, Option<CancelFunc>),
    monitor_set_cancel_this: unsafe extern "C" fn(Handle, *mut c_void),
}

/// Leptonica's `L_SEVERITY_NONE`.
const LEPTONICA_SILENT: c_int = 6;

/// Why Tesseract could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The library is not there, or is not Tesseract's.
    Load(String),
    /// Tesseract found none of the models asked for.
    NoModels(String),
    /// The image cannot be handed over (its size and its pixels disagree, or it is too large).
    Image(String),
    /// Reading was given up because its caller stopped waiting.
    Stopped,
    /// Tesseract failed to read the page.
    Failed,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Load(why) => write!(f, "cannot load Tesseract's library: {why}"),
            Error::NoModels(wanted) => write!(f, "Tesseract has none of the models {wanted}"),
            Error::Image(why) => write!(f, "cannot hand the image to Tesseract: {why}"),
            Error::Stopped => f.write_str("reading was stopped"),
            Error::Failed => f.write_str("Tesseract could not read the page"),
        }
    }
}

impl std::error::Error for Error {}

/// Tesseract's library, opened.
pub struct Library {
    functions: Functions,
    // After `functions` so that it is closed only once nothing can call into it.
    _library: libloading::Library,
}

impl Library {
    /// Opens the library by file name (`libtesseract.so.5`, found where the system's
    /// loader looks) or by path.
    pub fn open(name: &str) -> Result<Arc<Self>, Error> {
        // SAFETY: opening runs the library's initialisers; Tesseract's and Leptonica's only
        // set up their own globals.
        let library =
            unsafe { libloading::Library::new(name) }.map_err(|e| Error::Load(e.to_string()))?;
        let functions = Functions {
            version: symbol(&library, "TessVersion")?,
            create: symbol(&library, "TessBaseAPICreate")?,
            delete: symbol(&library, "TessBaseAPIDelete")?,
            set_variable: symbol(&library, "TessBaseAPISetVariable")?,
            init: symbol(&library, "TessBaseAPIInit3")?,
            loaded_languages: symbol(&library, "TessBaseAPIGetLoadedLanguagesAsVector")?,
            delete_text_array: symbol(&library, "TessDeleteTextArray")?,
            set_page_seg_mode: symbol(&library, "TessBaseAPISetPageSegMode")?,
            set_image: symbol(&library, "TessBaseAPISetImage")?,
            recognize: symbol(&library, "TessBaseAPIRecognize")?,
            tsv_text: symbol(&library, "TessBaseAPIGetTsvText")?,
            delete_text: symbol(&library, "TessDeleteText")?,
            clear: symbol(&library, "TessBaseAPIClear")?,
            monitor_create: symbol(&library, "TessMonitorCreate")?,
            monitor_delete: symbol(&library, "TessMonitorDelete")?,
            monitor_set_cancel_func: symbol(&library, "TessMonitorSetCancelFunc")?,
            monitor_set_cancel_this: symbol(&library, "TessMonitorSetCancelThis")?,
        };
        // Leptonica, Tesseract's image library, writes its complaints to standard error
        // (`Error in boxClipToRectangle` on a photo's edge): harmless to a reading, noise
        // in the server's log. The `tesseract` program's were dropped with its output.
        type SetSeverity = unsafe extern "C" fn(c_int) -> c_int;
        if let Ok(set_severity) = symbol::<SetSeverity>(&library, "setMsgSeverity") {
            // SAFETY: Leptonica's `l_int32 setMsgSeverity(l_int32)` sets one global level.
            unsafe { set_severity(LEPTONICA_SILENT) };
        }
        Ok(Arc::new(Self {
            functions,
            _library: library,
        }))
    }

    /// Tesseract's version (`5.3.0`).
    pub fn version(&self) -> String {
        // SAFETY: takes nothing; returns the library's own string, never freed.
        let version = unsafe { (self.functions.version)() };
        // SAFETY: that string is NUL-terminated and lives as long as the library.
        let version = unsafe { CStr::from_ptr(version) };
        version.to_string_lossy().into_owned()
    }

    /// A Tesseract instance with the `languages` models (`deu+eng`, tried in that order)
    /// loaded; of those missing it says nothing, [`Models::languages`] names those found.
    pub fn load(self: &Arc<Self>, languages: &str) -> Result<Models, Error> {
        let wanted = CString::new(languages).map_err(|_| Error::NoModels(languages.into()))?;
        // SAFETY: takes nothing; returns a new instance, or null when out of memory.
        let handle = unsafe { (self.functions.create)() };
        let handle = NonNull::new(handle).ok_or(Error::Failed)?;
        // Owned from here: dropping it on any failure below deletes the instance.
        let mut models = Models {
            library: self.clone(),
            handle,
            languages: Vec::new(),
        };
        // Tesseract's own messages (`Estimating resolution as 209`, a missing model's file
        // name) go to standard error unless sent elsewhere; what matters is said here.
        // SAFETY: a live instance and two NUL-terminated strings it copies; `debug_file`
        // is Tesseract's own variable.
        unsafe {
            (self.functions.set_variable)(
                handle.as_ptr(),
                c"debug_file".as_ptr(),
                c"/dev/null".as_ptr(),
            )
        };
        // SAFETY: a live instance; a null data path means Tesseract's own (its build's, or
        // TESSDATA_PREFIX); the languages are a NUL-terminated string it copies.
        let status =
            unsafe { (self.functions.init)(handle.as_ptr(), std::ptr::null(), wanted.as_ptr()) };
        if status != 0 {
            return Err(Error::NoModels(languages.into()));
        }
        models.languages = models.loaded_languages();
        Ok(models)
    }
}

/// The library's function `name`, whose C signature is `T`.
fn symbol<T: Copy>(library: &libloading::Library, name: &str) -> Result<T, Error> {
    let name = format!("{name}\0");
    // SAFETY: every caller gives as `T` the signature capi.h (or Leptonica's header)
    // declares for `name`; a fn pointer copied out stays valid while `library` is open,
    // which `Library` guarantees by owning both.
    let function = unsafe { library.get::<T>(name.as_bytes()) };
    function
        .map(|f| *f)
        .map_err(|e| Error::Load(format!("not Tesseract's library: {e}")))
}

/// One Tesseract instance with its models loaded: reads one page at a time.
pub struct Models {
    library: Arc<Library>,
    handle: NonNull<c_void>,
    languages: Vec<String>,
}

// SAFETY: an instance may be used from any thread as long as only one uses it at a time,
// which `&mut self` on every call that touches it ensures; Tesseract keeps nothing tied to
// the thread that made it.
unsafe impl Send for Models {}

impl Models {
    /// The models loaded, the one tried first first.
    pub fn languages(&self) -> &[String] {
        &self.languages
    }

    /// Reads a grey image (a byte per pixel, row after row) in page segmentation mode
    /// `mode`, and gives Tesseract's TSV: a row per page, block, paragraph, line and word,
    /// with its box and text. Tesseract stops soon after `stop` is set.
    pub fn read_tsv(
        &mut self,
        pixels: &[u8],
        width: u32,
        height: u32,
        mode: i32,
        stop: &AtomicBool,
    ) -> Result<String, Error> {
        let (Ok(w), Ok(h)) = (c_int::try_from(width), c_int::try_from(height)) else {
            return Err(Error::Image(format!(
                "{width}×{height} pixels is too large"
            )));
        };
        if u64::from(width) * u64::from(height) != pixels.len() as u64 {
            return Err(Error::Image(format!(
                "{} bytes for {width}×{height} pixels",
                pixels.len()
            )));
        }
        let f = &self.library.functions;
        let handle = self.handle.as_ptr();
        // SAFETY: a live instance, and `mode` is passed on as the `TessPageSegMode` it is.
        unsafe { (f.set_page_seg_mode)(handle, mode) };
        // SAFETY: `pixels` holds `h` rows of `w` bytes, a byte per pixel, as said; Tesseract
        // copies them before returning.
        unsafe { (f.set_image)(handle, pixels.as_ptr(), w, h, 1, w) };
        let monitor = Monitor::new(&self.library, stop)?;
        // SAFETY: a live instance holding an image; the monitor, and the flag it points
        // to, outlive the call.
        let status = unsafe { (f.recognize)(handle, monitor.handle.as_ptr()) };
        drop(monitor);
        let tsv = if status == 0 {
            // SAFETY: a live instance that has read its image; page 0 is the one it holds.
            let text = unsafe { (f.tsv_text)(handle, 0) };
            Ok(self.take_text(text))
        } else if stop.load(Ordering::Relaxed) {
            Err(Error::Stopped)
        } else {
            Err(Error::Failed)
        };
        // SAFETY: a live instance; drops its image and results, and keeps the models.
        unsafe { (f.clear)(handle) };
        tsv
    }

    fn loaded_languages(&self) -> Vec<String> {
        let f = &self.library.functions;
        // SAFETY: a live, initialised instance; gives a null-terminated array of strings,
        // or null, for `TessDeleteTextArray` to free.
        let array = unsafe { (f.loaded_languages)(self.handle.as_ptr()) };
        if array.is_null() {
            return Vec::new();
        }
        let mut names = Vec::new();
        for i in 0.. {
            // SAFETY: the array ends with a null entry, and none before `i` was null, so
            // `i` is within it.
            let slot = unsafe { array.add(i) };
            // SAFETY: `slot` is within the array, aligned, and holds a pointer.
            let entry = unsafe { *slot };
            if entry.is_null() {
                break;
            }
            // SAFETY: each entry is a NUL-terminated string, alive until the array is freed.
            let name = unsafe { CStr::from_ptr(entry) };
            names.push(name.to_string_lossy().into_owned());
        }
        // SAFETY: the array came from Tesseract and is freed once, after its last use.
        unsafe { (f.delete_text_array)(array) };
        names
    }

    /// A string Tesseract made, copied, and freed on its side.
    fn take_text(&self, text: *mut c_char) -> String {
        if text.is_null() {
            return String::new();
        }
        // SAFETY: a NUL-terminated string from Tesseract, alive until freed below.
        let copied = unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: made by Tesseract for the caller to free, and freed once.
        unsafe { (self.library.functions.delete_text)(text) };
        copied
    }
}

impl Drop for Models {
    fn drop(&mut self) {
        // SAFETY: the instance is live and nothing else holds it; deleting ends it.
        unsafe { (self.library.functions.delete)(self.handle.as_ptr()) };
    }
}

/// Tesseract's progress monitor, set to ask `stop` whether to give up.
struct Monitor<'a> {
    library: &'a Library,
    handle: NonNull<c_void>,
}

impl<'a> Monitor<'a> {
    fn new(library: &'a Library, stop: &'a AtomicBool) -> Result<Self, Error> {
        let f = &library.functions;
        // SAFETY: takes nothing; returns a new monitor, or null when out of memory.
        let handle = NonNull::new(unsafe { (f.monitor_create)() }).ok_or(Error::Failed)?;
        let monitor = Self { library, handle };
        // SAFETY: a live monitor; `stop_asked` has the `TessCancelFunc` signature.
        unsafe { (f.monitor_set_cancel_func)(handle.as_ptr(), Some(stop_asked)) };
        // SAFETY: a live monitor; `stop` lives at least as long as it ('a), and is only
        // read through the pointer.
        unsafe {
            (f.monitor_set_cancel_this)(handle.as_ptr(), std::ptr::from_ref(stop) as *mut c_void)
        };
        Ok(monitor)
    }
}

impl Drop for Monitor<'_> {
    fn drop(&mut self) {
        // SAFETY: a live monitor that no reading uses any more, deleted once.
        unsafe { (self.library.functions.monitor_delete)(self.handle.as_ptr()) };
    }
}

/// Asked by Tesseract between words: whether the caller stopped waiting.
unsafe extern "C" fn stop_asked(stop: *mut c_void, _words: c_int) -> bool {
    // SAFETY: `stop` is the flag `Monitor::new` was given, alive while its monitor is.
    let stop = unsafe { &*(stop as *const AtomicBool) };
    stop.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test script installs Tesseract with its English and German models.
    fn library() -> Arc<Library> {
        Library::open("libtesseract.so.5").expect("Tesseract's library (tesseract-ocr)")
    }

    /// A white page with `TOTAL 10.70` on it thrice, in blocky capitals (5×7 cells, 4
    /// pixels each): words for Tesseract to find, and to be stopped in.
    fn page() -> (Vec<u8>, u32, u32) {
        // Drawn as they look; rustfmt would stack them a string a line.
        #[rustfmt::skip]
        const GLYPHS: [(char, [&str; 7]); 7] = [
            ('T', ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."]),
            ('O', [".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."]),
            ('A', [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"]),
            ('L', ["#....", "#....", "#....", "#....", "#....", "#....", "#####"]),
            ('1', ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."]),
            ('0', [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."]),
            ('7', ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."]),
        ];
        let (width, height, cell) = (640u32, 360u32, 4u32);
        let mut pixels = vec![255u8; (width * height) as usize];
        let mut ink = |left: u32, top: u32| {
            for y in top..top + cell {
                for x in left..left + cell {
                    pixels[(y * width + x) as usize] = 0;
                }
            }
        };
        for line in 0..3 {
            let top = 60 + line * 100;
            for (i, letter) in "TOTAL 10.70".chars().enumerate() {
                let left = 40 + i as u32 * 6 * cell;
                if letter == '.' {
                    ink(left + 2 * cell, top + 6 * cell);
                }
                let Some((_, rows)) = GLYPHS.iter().find(|(c, _)| *c == letter) else {
                    continue;
                };
                for (y, row) in (0..).zip(rows) {
                    for (x, dot) in (0..).zip(row.chars()) {
                        if dot == '#' {
                            ink(left + x * cell, top + y * cell);
                        }
                    }
                }
            }
        }
        (pixels, width, height)
    }

    #[test]
    fn models_load_in_the_order_asked_and_missing_ones_are_left_out() {
        let library = library();
        assert!(library.version().starts_with('5'), "{}", library.version());
        let models = library.load("deu+xyz+eng").expect("deu and eng");
        assert_eq!(models.languages(), ["deu", "eng"]);
        assert!(matches!(library.load("xyz"), Err(Error::NoModels(_))));
    }

    #[test]
    fn an_image_whose_size_and_pixels_disagree_is_refused() {
        let mut models = library().load("eng").expect("eng");
        let stop = AtomicBool::new(false);
        let refused = models.read_tsv(&[255; 10], 4, 4, 11, &stop);
        assert!(matches!(refused, Err(Error::Image(_))), "{refused:?}");
    }

    #[test]
    fn a_stopped_reading_gives_up_and_the_models_read_on() {
        let mut models = library().load("eng").expect("eng");
        let (pixels, width, height) = page();
        let stopped = AtomicBool::new(true);
        assert_eq!(
            models.read_tsv(&pixels, width, height, 11, &stopped),
            Err(Error::Stopped)
        );
        let tsv = models
            .read_tsv(&pixels, width, height, 11, &AtomicBool::new(false))
            .expect("read");
        // The page's own row, with its size, and the words on it.
        assert!(
            tsv.starts_with("1\t1\t0\t0\t0\t0\t0\t0\t640\t360\t"),
            "{tsv}"
        );
        assert_eq!(tsv.matches("\tTOTAL\n").count(), 3, "{tsv}");
    }

    #[test]
    fn a_missing_library_says_so() {
        assert!(matches!(
            Library::open("/nonexistent/libtesseract.so.5").map(|_| ()),
            Err(Error::Load(_))
        ));
    }
}
